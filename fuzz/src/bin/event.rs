//! AFL++ harness of [`fuzz::event`]: `fuzz/run.sh SECONDS event`.

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::event::run(data));
}
