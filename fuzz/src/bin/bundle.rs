//! AFL++ harness of [`fuzz::bundle`]: `fuzz/run.sh SECONDS bundle`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::bundle::run(data));
}
