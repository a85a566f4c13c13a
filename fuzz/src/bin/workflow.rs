//! AFL++ harness of [`fuzz::workflow`]: `fuzz/run.sh SECONDS workflow`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::workflow::run(data));
}
