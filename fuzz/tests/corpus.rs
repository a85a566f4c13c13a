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

fn run_of(target: &str) -> fn(&[u8]) {
    fuzz::TARGETS.iter().find(|t| t.0 == target).map(|t| t.1).expect("a target")
}

macro_rules! seeds {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), run_of(stringify!($name)));
            }
        )*
        #[test]
        fn every_target_is_replayed_here() {
            let here = [$(stringify!($name)),*];
            for (target, _) in fuzz::TARGETS {
                assert!(here.contains(target), "{target} has no test here");
            }
        }
    };
}

seeds!(journal event snapshot bundle workflow http);
