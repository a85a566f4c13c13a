//! Owner-only files: the journal is the whole history of a ledger (and holds
//! key hashes), so its directory is created 0700 and its files 0600.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of directories ccnode creates: owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of files ccnode creates: owner read and write.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode 0700 (the umask may only
/// narrow it). Directories that already exist keep their mode.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(dir)
}

/// `OpenOptions` whose `create` makes the file 0600.
pub(crate) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(PRIVATE_FILE_MODE);
    options
}

/// `dir` itself and its direct entries whose permissions give anything to
/// the group or to others, with their modes (`0o777` bits). Missing `dir`:
/// nothing. Symbolic links are judged by what they point to.
pub fn exposed_paths(dir: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    let mut out = Vec::new();
    let mode = match std::fs::metadata(dir) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    if mode & 0o077 != 0 {
        out.push((dir.to_owned(), mode));
    }
    if !std::fs::metadata(dir)?.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push((path, mode));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_journal_is_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data").join("journal");
        let journal = crate::Journal::create(&dir, "private", crate::Options::default()).expect("create");
        drop(journal);
        for d in [root.path().join("data"), dir.clone()] {
            let mode = std::fs::metadata(&d).expect("dir").permissions().mode() & 0o777;
            assert_eq!(mode, PRIVATE_DIR_MODE, "{}", d.display());
        }
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
            assert_eq!(mode, PRIVATE_FILE_MODE, "{}", path.display());
            files += 1;
        }
        assert!(files >= 3, "JOURNAL, LOCK and the first segment");
        assert!(exposed_paths(&dir).expect("check").is_empty());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(exposed_paths(&dir).expect("check"), vec![(dir.clone(), 0o755)]);
    }
}
