//! Validated identifiers: account ids, node names, workflow ids and transaction uuids.
//!
//! Charset (documented promise): an [`AccountId`] or [`NodeName`] is 1 to
//! [`NAME_LENGTH_MAX_BYTES`] bytes of ASCII letters, digits, `_`, `-` and `.`,
//! and never `.` or `..` alone. `/` is excluded because it separates path
//! segments; whitespace and control characters are excluded so names are safe
//! in headers, logs and hash input strings.

use std::fmt;

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
                let raw = String::decode(decoder)?;
                Self::new(&raw).map_err(|e| DecodeError::OtherString(e.to_string()))
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

impl WorkflowId {
    /// Checks `id` is non-empty, bounded, printable ASCII without spaces.
    pub fn new(id: &str) -> Result<Self, NameError> {
        if id.is_empty() {
            return Err(NameError::Empty);
        }
        if id.len() > NAME_LENGTH_MAX_BYTES {
            return Err(NameError::TooLong { name: id.to_owned() });
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NameError::BadCharacter { name: id.to_owned() });
        }
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
        let raw = String::decode(decoder)?;
        Self::new(&raw).map_err(|e| DecodeError::OtherString(e.to_string()))
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
