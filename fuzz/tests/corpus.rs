//! Replays the committed seed corpus (`fuzz/corpus/<target>/`) and the saved
//! crashes (`fuzz/crashes/<target>/`, each a regression input) through every
//! target's function, on stable, without the fuzzer: the targets' contracts
//! hold on every seed, and each seed set is non-empty.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = 0;
    for kind in ["corpus", "crashes"] {
        let Ok(dir) = fs::read_dir(root.join(kind).join(target)) else { continue };
        for entry in dir {
            let path = entry.expect("entry").path();
            let bytes = fs::read(&path).expect("seed");
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} broke the target's contract", path.display());
            seeds += 1;
        }
    }
    assert!(seeds > 0, "{target}: no seeds");
}

#[test]
fn every_target_has_seeds_and_passes_them() {
    for &(target, run) in fuzz::TARGETS {
        replay(target, run);
    }
}
