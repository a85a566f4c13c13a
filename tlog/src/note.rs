//! C2SP signed notes (c2sp.org/signed-note): the text, its signature lines,
//! verifier keys, Ed25519 note signatures (type 0x01) and timestamped
//! Ed25519 checkpoint cosignatures (type 0x04, c2sp.org/tlog-cosignature
//! `cosignature/v1`).

use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The em dash (U+2014) that starts a signature line.
pub const EM_DASH: char = '\u{2014}';
/// Most signatures a note may carry (the spec asks for at least 16).
pub const SIGNATURES_MAX: usize = 64;
/// Largest note accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 1 << 20;
/// Signature type of Ed25519 note signatures.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 checkpoint cosignatures.
pub const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Why a note, a key or a signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Not UTF-8, or too large.
    #[error("the note is not UTF-8 text of at most {NOTE_BYTES_MAX} bytes")]
    NotText,
    /// A control character other than newline.
    #[error("the note holds a control character (byte {byte:#04x}) other than newline")]
    ControlCharacter {
        /// The character.
        byte: u8,
    },
    /// No blank line separating text and signatures, or text not ending in a newline.
    #[error("the note has no blank line between its text and its signatures")]
    NoSignatureBlock,
    /// A malformed signature line.
    #[error("signature line {line} is malformed: {reason}")]
    BadSignatureLine {
        /// 1-based line within the signature block.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More signatures than accepted.
    #[error("the note has more than {SIGNATURES_MAX} signatures")]
    TooManySignatures,
    /// A malformed key name.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    BadKeyName(String),
    /// A malformed verifier key.
    #[error("invalid verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// A signature from a trusted key that does not verify.
    #[error("the signature by {name} does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
    },
    /// No signature from any trusted key.
    #[error("no signature by a trusted key ({trusted})")]
    NoTrustedSignature {
        /// The trusted keys' names.
        trusted: String,
    },
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Decodes standard base64 and accepts only its canonical form.
pub(crate) fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let bytes = b64().decode(text).ok()?;
    (b64().encode(&bytes) == text).then_some(bytes)
}

/// Whether a key name is acceptable: non-empty, no Unicode space, no '+'.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`, big endian.
pub fn key_id(name: &str, kind: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One signature line: `— <name> base64(key id ‖ signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its newline.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("{EM_DASH} {} {}\n", self.name, b64().encode(bytes))
    }

    /// Parses one line (without its newline).
    pub fn parse_line(line: &str, number: usize) -> Result<NoteSignature, NoteError> {
        let bad = |reason| NoteError::BadSignatureLine { line: number, reason };
        let rest = line.strip_prefix(EM_DASH).and_then(|r| r.strip_prefix(' ')).ok_or(bad("no leading em dash"))?;
        let (name, sig) = rest.split_once(' ').ok_or(bad("no space between name and signature"))?;
        if !valid_key_name(name) {
            return Err(bad("invalid key name"));
        }
        let bytes = decode_b64(sig).ok_or(bad("signature is not canonical base64"))?;
        if bytes.len() < 5 {
            return Err(bad("signature shorter than a key id"));
        }
        let key_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        Ok(NoteSignature { name: name.to_owned(), key_id, signature: bytes[4..].to_vec() })
    }
}

/// A note: text (ending in a newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, final newline included.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

/// Checks a text's characters: UTF-8 with no control character but newline.
pub(crate) fn check_text(bytes: &[u8]) -> Result<&str, NoteError> {
    if bytes.len() > NOTE_BYTES_MAX {
        return Err(NoteError::NotText);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| NoteError::NotText)?;
    if let Some(&byte) = bytes.iter().find(|&&b| (b < 0x20 && b != b'\n') || b == 0x7f) {
        return Err(NoteError::ControlCharacter { byte });
    }
    Ok(text)
}

/// Parses a block of signature lines (each ending in a newline).
pub fn parse_signature_lines(block: &str) -> Result<Vec<NoteSignature>, NoteError> {
    let Some(body) = block.strip_suffix('\n') else {
        return Err(NoteError::BadSignatureLine { line: 1, reason: "does not end in a newline" });
    };
    let mut out = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        if out.len() == SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        out.push(NoteSignature::parse_line(line, i + 1)?);
    }
    Ok(out)
}

impl Note {
    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        let all = check_text(bytes)?;
        // The text is separated from the signatures by the last blank line.
        let split = all.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let text = &all[..=split];
        let block = &all[split + 2..];
        if block.is_empty() {
            return Err(NoteError::NoSignatureBlock);
        }
        let signatures = parse_signature_lines(block)?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// The note as text.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// Verifies the note against trusted keys (C2SP rules): signatures whose
    /// name and id match no trusted key are ignored; one from a trusted key
    /// that fails makes the whole note fail; at least one must verify.
    /// Returns the trusted keys that signed, each once, in key order.
    pub fn verify<'k>(&self, trusted: &'k [VerifierKey]) -> Result<Vec<&'k VerifierKey>, NoteError> {
        let mut signed = Vec::new();
        for sig in &self.signatures {
            for key in trusted.iter().filter(|k| k.name == sig.name && k.key_id == sig.key_id) {
                if !key.verifies(&self.text, &sig.signature) {
                    return Err(NoteError::BadSignature { name: key.name.clone() });
                }
                if !signed.iter().any(|k: &&VerifierKey| std::ptr::eq(*k, key)) {
                    signed.push(key);
                }
            }
        }
        if signed.is_empty() {
            let trusted = trusted.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(NoteError::NoTrustedSignature { trusted });
        }
        Ok(signed)
    }

    /// The timestamp of a verified cosignature by `key`, if the note has one.
    pub fn cosignature_time(&self, key: &VerifierKey) -> Option<u64> {
        self.signatures
            .iter()
            .find(|s| s.name == key.name && s.key_id == key.key_id && s.signature.len() == 72)
            .map(|s| u64::from_be_bytes(s.signature[..8].try_into().expect("8 bytes")))
    }
}

/// What a verifier key verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Ed25519 note signatures (0x01).
    Ed25519,
    /// Timestamped Ed25519 checkpoint cosignatures, `cosignature/v1` (0x04).
    CosignatureV1,
}

impl KeyType {
    /// The signature type byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => TYPE_ED25519,
            KeyType::CosignatureV1 => TYPE_COSIGNATURE_V1,
        }
    }
}

/// A verifier key: `<name>+<hex key id>+<base64(type ‖ public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// Type.
    pub kind: KeyType,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

/// The message a `cosignature/v1` signs.
pub fn cosignature_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

impl VerifierKey {
    /// A key of a type for a name.
    pub fn new(name: &str, kind: KeyType, key: VerifyingKey) -> Result<VerifierKey, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        let key_id = key_id(name, kind.byte(), key.as_bytes());
        Ok(VerifierKey { name: name.to_owned(), key_id, kind, key })
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let text = text.trim_end_matches('\n');
        // The name and the id hold no '+'; the base64 key may.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey("it must be three parts joined by '+'"));
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(NoteError::BadVerifierKey("the key id must be 8 lower-case hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::BadVerifierKey("bad key id"))?;
        let bytes = decode_b64(key).ok_or(NoteError::BadVerifierKey("the key is not canonical base64"))?;
        let kind = match bytes.first() {
            Some(&TYPE_ED25519) => KeyType::Ed25519,
            Some(&TYPE_COSIGNATURE_V1) => KeyType::CosignatureV1,
            _ => return Err(NoteError::BadVerifierKey("unsupported signature type (0x01 and 0x04 are)")),
        };
        let raw: [u8; 32] =
            bytes[1..].try_into().map_err(|_| NoteError::BadVerifierKey("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| NoteError::BadVerifierKey("not an Ed25519 point"))?;
        let vkey = VerifierKey::new(name, kind, key)?;
        if vkey.key_id != id {
            return Err(NoteError::BadVerifierKey("the key id does not match the name and key"));
        }
        Ok(vkey)
    }

    /// Whether `signature` (after the key id) signs `text` under this key.
    pub fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        match self.kind {
            KeyType::Ed25519 => {
                let Ok(sig) = Signature::from_slice(signature) else { return false };
                self.key.verify_strict(text.as_bytes(), &sig).is_ok()
            }
            KeyType::CosignatureV1 => {
                if signature.len() != 72 {
                    return false;
                }
                let timestamp = u64::from_be_bytes(signature[..8].try_into().expect("8 bytes"));
                if timestamp > i64::MAX as u64 {
                    return false;
                }
                let Ok(sig) = Signature::from_slice(&signature[8..]) else { return false };
                self.key.verify_strict(&cosignature_message(timestamp, text), &sig).is_ok()
            }
        }
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![self.kind.byte()];
        bytes.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, b64().encode(bytes))
    }
}

/// A named Ed25519 signing key that signs notes and cosigns checkpoints.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("NoteSigner").field("name", &self.name).field("public", &self.key.verifying_key()).finish()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<NoteSigner, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        Ok(NoteSigner { name: name.to_owned(), key: SigningKey::from_bytes(seed) })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key of note signatures.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(&self.name, KeyType::Ed25519, self.key.verifying_key()).expect("name checked at construction")
    }

    /// The verifier key of this signer's cosignatures.
    pub fn cosigner_key(&self) -> VerifierKey {
        VerifierKey::new(&self.name, KeyType::CosignatureV1, self.key.verifying_key())
            .expect("name checked at construction")
    }

    /// Signs raw bytes (for statements that are not notes, such as a key rotation).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// An Ed25519 note signature of `text`.
    pub fn sign(&self, text: &str) -> NoteSignature {
        let vkey = self.verifier_key();
        NoteSignature {
            name: self.name.clone(),
            key_id: vkey.key_id,
            signature: self.sign_bytes(text.as_bytes()).to_vec(),
        }
    }

    /// A `cosignature/v1` of a checkpoint's text at `timestamp` (seconds).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> NoteSignature {
        let vkey = self.cosigner_key();
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&self.sign_bytes(&cosignature_message(timestamp, checkpoint_text)));
        NoteSignature { name: self.name.clone(), key_id: vkey.key_id, signature }
    }
}
