//! What an operator must keep to themselves: the data directory (owner only)
//! and the admin key (from a file or standard input, never the command line).

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context};

/// Creates the data directory and its `journal` and `projections`
/// directories 0700 where missing, then warns about anything in them that
/// the group or others may read (a directory made by an older ccnode, or by
/// hand).
pub fn prepare_data_dir(data: &Path) -> anyhow::Result<()> {
    for dir in [data.to_owned(), api::app::journal_dir(data), api::app::projections_dir(data)] {
        journal::create_private_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    warn_exposed(data);
    Ok(())
}

/// Logs a warning for the data directory, its journal and projections
/// directories, and the journal's files, when the group or others have any
/// access to them.
pub fn warn_exposed(data: &Path) {
    let mut exposed = Vec::new();
    let data_mode = std::fs::metadata(data).map(|m| m.permissions().mode() & 0o777);
    if let Ok(mode) = data_mode {
        if mode & 0o077 != 0 {
            exposed.push((data.to_owned(), mode));
        }
    }
    for dir in [api::app::journal_dir(data), api::app::projections_dir(data)] {
        match journal::exposed_paths(&dir) {
            Ok(paths) => exposed.extend(paths),
            Err(error) => tracing::warn!(%error, dir = %dir.display(), "could not check permissions"),
        }
    }
    // The snapshot's files are covered by their directory; the journal's are listed.
    let projections = api::app::projections_dir(data);
    exposed.retain(|(path, _)| path == &projections || path.parent() != Some(projections.as_path()));
    if exposed.is_empty() {
        return;
    }
    let list: Vec<String> = exposed.iter().map(|(path, mode)| format!("{} ({mode:03o})", path.display())).collect();
    tracing::warn!(
        paths = %list.join(", "),
        "the data directory is readable by group or others; it holds the whole ledger and its key hashes: \
         chmod -R go-rwx {}",
        data.display()
    );
}

/// Logs a warning when group or others may read `path`.
pub fn warn_if_shared(path: &Path, what: &str) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = %format!("{mode:03o}"), "{what} and is readable by group or others: chmod 600 it");
        }
    }
}

/// The admin key from a file: its first line, without the line end. The
/// file must not be accessible to group or others (as ssh refuses a private
/// key that is).
pub fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading the admin key file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!("the admin key file {} is accessible to group or others (mode {mode:03o}); chmod 600 it", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the admin key file {}", path.display()))?;
    let key = text.lines().next().unwrap_or_default();
    if key.is_empty() {
        bail!("the admin key file {} is empty", path.display());
    }
    Ok(key.to_owned())
}

/// The admin key as one line of standard input (`--admin-key -`).
pub fn read_key_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the admin key from standard input")?;
    let key = line.trim_end_matches(['\n', '\r']);
    if key.is_empty() {
        bail!("--admin-key -: standard input gave no key (one line expected)");
    }
    Ok(key.to_owned())
}

/// The admin key given as `--admin-key KEY` (or `-`: standard input) or
/// `--admin-key-file FILE`, at most one of them.
pub fn admin_key(key: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<String>> {
    match (key, file) {
        (Some(_), Some(_)) => {
            bail!("give the admin key once: --admin-key (CCNODE_ADMIN_KEY) or --admin-key-file (CCNODE_ADMIN_KEY_FILE)")
        }
        (Some("-"), None) => read_key_stdin().map(Some),
        (Some(key), None) => Ok(Some(key.to_owned())),
        (None, Some(path)) => read_key_file(path).map(Some),
        (None, None) => Ok(None),
    }
}
