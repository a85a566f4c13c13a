//! AFL++ harness of [`fuzz::journal`]: `fuzz/run.sh SECONDS journal`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::journal::run(data));
}
