//! AFL++ harness of [`fuzz::snapshot`]: `fuzz/run.sh SECONDS snapshot`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::snapshot::run(data));
}
