//! C2SP checkpoints (c2sp.org/tlog-checkpoint) and ccnode's extension lines.
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//! balances <base64 root of the balances tree>
//! link <neighbour> <version> <hex ratchet head>      (one per federation link)
//! ```

use crate::merkle::Hash;
use crate::note::{check_text, decode_b64, Note, NoteError, VerifierKey};

/// Why text is not a (ccnode) checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note around it.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A malformed line.
    #[error("checkpoint line {line} is malformed: {reason}")]
    BadLine {
        /// 1-based.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Fewer than three lines or not ending in a newline.
    #[error("a checkpoint is at least three lines, each ending in a newline")]
    TooShort,
    /// A ccnode checkpoint without its `balances` line.
    #[error("the checkpoint has no balances line")]
    NoBalances,
}

/// A checkpoint's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin: the log's identity.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// RFC 6962 root of the tree of `size` leaves.
    pub root: Hash,
    /// Extension lines, in order, without newlines.
    pub extensions: Vec<String>,
}

/// One `link` line: this node's side of a federation link at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLine {
    /// The neighbour's account name on this node.
    pub neighbour: String,
    /// Written versions hashed into the link ratchet.
    pub version: u64,
    /// The ratchet's blake3 head.
    pub head: [u8; 32],
}

impl LinkLine {
    /// The extension line.
    pub fn line(&self) -> String {
        format!("link {} {} {}", self.neighbour, self.version, hex(&self.head))
    }

    fn parse(line: &str) -> Option<LinkLine> {
        let mut parts = line.strip_prefix("link ")?.split(' ');
        let (Some(neighbour), Some(version), Some(head), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if neighbour.is_empty() {
            return None;
        }
        let version = parse_decimal(version)?;
        let head = unhex32(head)?;
        Some(LinkLine { neighbour: neighbour.to_owned(), version, head })
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// 64 lower-case hex digits to 32 bytes.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    // Canonical form only: upper-case digits would give a second text for one checkpoint.
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// ASCII decimal with no leading zeroes (except "0").
pub fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// 32 bytes from canonical base64.
pub fn parse_hash_b64(text: &str) -> Option<Hash> {
    decode_b64(text)?.try_into().ok()
}

impl Checkpoint {
    /// A ccnode checkpoint: the balances root, then one line per link (sorted by neighbour).
    pub fn ccnode(origin: &str, size: u64, root: Hash, balances_root: Hash, mut links: Vec<LinkLine>) -> Checkpoint {
        links.sort_by(|a, b| a.neighbour.cmp(&b.neighbour));
        let mut extensions = vec![format!("balances {}", crate::b64(&balances_root))];
        extensions.extend(links.iter().map(LinkLine::line));
        Checkpoint { origin: origin.to_owned(), size, root, extensions }
    }

    /// The note text.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, crate::b64(&self.root));
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint's note text (signatures already split off).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        check_text(text.as_bytes())?;
        let body = text.strip_suffix('\n').ok_or(CheckpointError::TooShort)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooShort);
        }
        let bad = |line, reason| CheckpointError::BadLine { line, reason };
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad(1, "empty origin"));
        }
        let size = parse_decimal(lines[1]).ok_or(bad(2, "the size is not a decimal without leading zeroes"))?;
        let root = parse_hash_b64(lines[2]).ok_or(bad(3, "the root is not 32 bytes of canonical base64"))?;
        let mut extensions = Vec::new();
        for (i, line) in lines[3..].iter().enumerate() {
            if line.is_empty() {
                return Err(bad(i + 4, "empty extension line"));
            }
            extensions.push((*line).to_owned());
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }

    /// The balances root, if the checkpoint has a well-formed `balances` line.
    pub fn balances_root(&self) -> Result<Hash, CheckpointError> {
        for (i, e) in self.extensions.iter().enumerate() {
            if let Some(rest) = e.strip_prefix("balances ") {
                return parse_hash_b64(rest).ok_or(CheckpointError::BadLine {
                    line: i + 4,
                    reason: "the balances root is not 32 bytes of canonical base64",
                });
            }
        }
        Err(CheckpointError::NoBalances)
    }

    /// The `link` lines.
    pub fn links(&self) -> Result<Vec<LinkLine>, CheckpointError> {
        let mut out = Vec::new();
        for (i, e) in self.extensions.iter().enumerate() {
            if e.starts_with("link ") {
                out.push(LinkLine::parse(e).ok_or(CheckpointError::BadLine {
                    line: i + 4,
                    reason: "a link line is `link <neighbour> <version> <64 hex digits>`",
                })?);
            }
        }
        Ok(out)
    }
}

/// A signed checkpoint: the note and its parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note (text and signatures).
    pub note: Note,
}

impl SignedCheckpoint {
    /// Parses a signed note holding a checkpoint (no signature is checked).
    pub fn parse(bytes: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(bytes)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Parses and verifies it against the log's key: the note must carry a
    /// valid signature by `key`, and its origin must be the key's name.
    pub fn verify(bytes: &[u8], key: &VerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
        let signed = SignedCheckpoint::parse(bytes)?;
        signed.note.verify(std::slice::from_ref(key))?;
        if signed.checkpoint.origin != key.name {
            return Err(CheckpointError::BadLine { line: 1, reason: "the origin is not the key's name" });
        }
        Ok(signed)
    }
}
