//! AFL++ harness of [`fuzz::http`]: `fuzz/run.sh SECONDS http`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::http::run(data));
}
