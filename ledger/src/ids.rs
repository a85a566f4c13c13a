//! Validated identifiers: account ids, node names, workflow ids and transaction uuids.
//!
//! Charset (documented promise): an [`AccountId`] or [`NodeName`] is 1 to
//! [`NAME_LENGTH_MAX_BYTES`] bytes of ASCII letters, digits, `_`, `-` and `.`,
//! and never `.` or `..` alone. `/` is excluded because it separates path
//! segments; whitespace and control characters are excluded so names are safe
//! in headers, logs and hash input strings.

use std::fmt;

use bincode::de::read::Reader;
use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};
use uuid::Uuid;

/// Longest account id or node name, in bytes.
pub const NAME_LENGTH_MAX_BYTES: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`NAME_LENGTH_MAX_BYTES`].
    #[error("name {name:?} is longer than {NAME_LENGTH_MAX_BYTES} bytes")]
    TooLong {
        /// The refused name.
        name: String,
    },
    /// The name contains a character outside the charset.
    #[error("name {name:?} contains a character outside [A-Za-z0-9_.-] or is a dot segment")]
    BadCharacter {
        /// The refused name.
        name: String,
    },
}

fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NAME_LENGTH_MAX_BYTES {
        return Err(NameError::TooLong { name: name.to_owned() });
    }
    let charset_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !charset_ok || name == "." || name == ".." {
        return Err(NameError::BadCharacter { name: name.to_owned() });
    }
    Ok(())
}

/// Bytes of the stack buffer [`decode_string`] reads through (an entry
/// description's bound, `DESCRIPTION_LENGTH_MAX_BYTES`).
const DECODE_STACK_BYTES: usize = 1024;

/// Decodes a `String` exactly as bincode's own `String::decode` does (a
/// length, then that many bytes of UTF-8; the same bytes consumed, the same
/// limit claimed, the same errors), but reads a short one through a stack
/// buffer into an allocation of its exact size instead of a zeroed one.
pub(crate) fn decode_string<Context, D: Decoder<Context = Context>>(decoder: &mut D) -> Result<String, DecodeError> {
    let len = u64::decode(decoder)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::OutsideUsizeRange(len))?;
    decoder.claim_container_read::<u8>(len)?;
    let utf8 = |inner| DecodeError::Utf8 { inner };
    let mut via = |bytes: &mut [u8]| {
        decoder.reader().read(bytes)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(utf8)
    };
    // Names are short: a small buffer to zero for them.
    if len <= NAME_LENGTH_MAX_BYTES {
        return via(&mut [0u8; NAME_LENGTH_MAX_BYTES][..len]);
    }
    if len <= DECODE_STACK_BYTES {
        return via(&mut [0u8; DECODE_STACK_BYTES][..len]);
    }
    let mut bytes = vec![0u8; len];
    decoder.reader().read(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| utf8(e.utf8_error()))
}

macro_rules! name_newtype {
    ($(#[$meta:meta])* $ty:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Checks `name` against the charset and length bound.
            pub fn new(name: &str) -> Result<Self, NameError> {
                check_name(name)?;
                Ok(Self(name.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl Encode for $ty {
            fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
                self.0.encode(encoder)
            }
        }

        impl<Context> Decode<Context> for $ty {
            fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
                // One allocation: the decoded string is checked and kept.
                let raw = decode_string(decoder)?;
                check_name(&raw).map_err(|e| DecodeError::OtherString(e.to_string()))?;
                Ok(Self(raw))
            }
        }
        bincode::impl_borrow_decode!($ty);
    };
}

name_newtype!(
    /// The id of an account on this node: a local user, or the name of an
    /// adjacent node (a leafward child or the trunkward parent).
    AccountId
);
name_newtype!(
    /// The name of a node in the tree, one path segment.
    NodeName
);

/// The id of a workflow: 1 to [`NAME_LENGTH_MAX_BYTES`] printable ASCII
/// characters without spaces (so 0.9.x codes like `|P-PC+CX+` are valid ids).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkflowId(String);

fn check_workflow_id(id: &str) -> Result<(), NameError> {
    if id.is_empty() {
        return Err(NameError::Empty);
    }
    if id.len() > NAME_LENGTH_MAX_BYTES {
        return Err(NameError::TooLong { name: id.to_owned() });
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NameError::BadCharacter { name: id.to_owned() });
    }
    Ok(())
}

impl WorkflowId {
    /// Checks `id` is non-empty, bounded, printable ASCII without spaces.
    pub fn new(id: &str) -> Result<Self, NameError> {
        check_workflow_id(id)?;
        Ok(Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Encode for WorkflowId {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.0.encode(encoder)
    }
}

impl<Context> Decode<Context> for WorkflowId {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let raw = decode_string(decoder)?;
        check_workflow_id(&raw).map_err(|e| DecodeError::OtherString(e.to_string()))?;
        Ok(Self(raw))
    }
}
bincode::impl_borrow_decode!(WorkflowId);

/// A transaction's universal id, created by the originating twig.
/// Encoded as its 16 raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub Uuid);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Encode for TxId {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.0.as_bytes().encode(encoder)
    }
}

impl<Context> Decode<Context> for TxId {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; 16]>::decode(decoder)?;
        Ok(Self(Uuid::from_bytes(bytes)))
    }
}
bincode::impl_borrow_decode!(TxId);

#[cfg(test)]
mod tests {
    use super::*;

    /// `decode_string` against bincode's own `String::decode`, with the
    /// event configuration, on the lengths around each buffer's bound, on
    /// bytes that are not UTF-8, on truncated input and over the limit.
    #[test]
    fn decode_string_reads_what_bincode_reads() {
        let config = crate::event::bincode_config();
        let ours = |bytes: &[u8]| {
            bincode::decode_from_slice_with_context::<(), Wrapped, _>(bytes, config, ()).map(|(w, n)| (w.0, n))
        };
        let theirs = |bytes: &[u8]| bincode::decode_from_slice::<String, _>(bytes, config);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for len in [0usize, 1, 63, 64, 65, 1023, 1024, 1025, 5000] {
            let text: String = (0..len).map(|i| char::from(b'a' + u8::try_from(i % 26).expect("small"))).collect();
            let mut bytes = bincode::encode_to_vec(&text, config).expect("encodes");
            cases.push(bytes.clone());
            bytes.push(7); // trailing bytes are the caller's business
            cases.push(bytes.clone());
            bytes.truncate(bytes.len().saturating_sub(3)); // truncated
            cases.push(bytes);
        }
        for len in [2usize, 64, 100, 2000] {
            let mut bytes = bincode::encode_to_vec(vec![b'x'; len], config).expect("encodes");
            let last = bytes.len() - 1;
            bytes[last] = 0xff; // not UTF-8
            cases.push(bytes);
        }
        cases.push(bincode::encode_to_vec(u64::MAX, config).expect("encodes")); // over the limit
        cases.push(vec![3, 0xe2, 0x82, 0xac]); // "€", three bytes
        for bytes in &cases {
            match (ours(bytes), theirs(bytes)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{bytes:?}: ours {a:?}, bincode's {b:?}"),
            }
        }
    }

    struct Wrapped(String);

    impl<Context> Decode<Context> for Wrapped {
        fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
            decode_string(decoder).map(Wrapped)
        }
    }
}
