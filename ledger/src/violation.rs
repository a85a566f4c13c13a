//! The refusal vocabulary: one variant per reference error class that
//! `decide` can raise, with the reference's field names.

use std::collections::BTreeMap;

use crate::amount::Amount;

/// A refused command: the request was wrong, the ledger is fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// `DoesNotExistViolation {type, id}`.
    #[error("{type_} {id} does not exist")]
    DoesNotExist {
        /// `account`, `transaction`, …
        type_: String,
        /// The missing id.
        id: String,
    },
    /// `PathViolation {relPath, context}`.
    #[error("path {rel_path:?} does not resolve on node {context}")]
    Path {
        /// The path.
        rel_path: String,
        /// The node that tried.
        context: String,
    },
    /// `WorkflowViolation {type, from, to}`.
    #[error("workflow {type_} does not allow {from} to {to}")]
    Workflow {
        /// Workflow id.
        type_: String,
        /// Current state.
        from: String,
        /// Requested state.
        to: String,
    },
    /// `UnknownWorkflowViolation {workflow_id}`.
    #[error("unknown workflow {workflow_id}")]
    UnknownWorkflow {
        /// The id.
        workflow_id: String,
    },
    /// `DeprecatedWorkflowViolation {id}` (inactive workflow).
    #[error("workflow {id} is not active")]
    DeprecatedWorkflow {
        /// The id.
        id: String,
    },
    /// `SameAccountViolation {wrongId}`.
    #[error("payer and payee are both {wrong_id}")]
    SameAccount {
        /// The account.
        wrong_id: String,
    },
    /// `InvalidFieldsViolation {fields, type}`.
    #[error("invalid fields on {type_}: {fields:?}")]
    InvalidFields {
        /// Field name → why.
        fields: BTreeMap<String, String>,
        /// Entity type.
        type_: String,
    },
    /// `PermissionViolation`.
    #[error("permission denied")]
    Permission,
    /// `MinLimitViolation {limit, projected, accId}`.
    #[error("account {acc_id} would go to {projected}, below its minimum {limit}")]
    MinLimit {
        /// The minimum.
        limit: Amount,
        /// The balance the write would produce.
        projected: Amount,
        /// The account.
        acc_id: String,
    },
    /// `MaxLimitViolation {limit, projected, accId}`.
    #[error("account {acc_id} would go to {projected}, above its maximum {limit}")]
    MaxLimit {
        /// The maximum.
        limit: Amount,
        /// The balance the write would produce.
        projected: Amount,
        /// The account.
        acc_id: String,
    },
    /// `DuplicateUuidViolation` (referenced by the reference, fields guessed).
    #[error("transaction {uuid} already exists")]
    DuplicateUuid {
        /// The uuid.
        uuid: String,
    },
    /// `CCOtherViolation {translated}`: anything else a client did wrong.
    #[error("{translated}")]
    Other {
        /// Message.
        translated: String,
    },
}

/// A field value for rendering `{"errors":[{"class":…, …}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A string.
    Text(String),
    /// A number (render as a JSON number or canonical string).
    Amount(Amount),
    /// An object of strings.
    Map(BTreeMap<String, String>),
}

impl Violation {
    /// The reference's short class name.
    pub fn class(&self) -> &'static str {
        match self {
            Violation::DoesNotExist { .. } => "DoesNotExistViolation",
            Violation::Path { .. } => "PathViolation",
            Violation::Workflow { .. } => "WorkflowViolation",
            Violation::UnknownWorkflow { .. } => "UnknownWorkflowViolation",
            Violation::DeprecatedWorkflow { .. } => "DeprecatedWorkflowViolation",
            Violation::SameAccount { .. } => "SameAccountViolation",
            Violation::InvalidFields { .. } => "InvalidFieldsViolation",
            Violation::Permission => "PermissionViolation",
            Violation::MinLimit { .. } => "MinLimitViolation",
            Violation::MaxLimit { .. } => "MaxLimitViolation",
            Violation::DuplicateUuid { .. } => "DuplicateUuidViolation",
            Violation::Other { .. } => "CCOtherViolation",
        }
    }

    /// Class-specific fields with their wire names, in a fixed order.
    pub fn fields(&self) -> Vec<(&'static str, FieldValue)> {
        let t = |s: &String| FieldValue::Text(s.clone());
        match self {
            Violation::DoesNotExist { type_, id } => vec![("type", t(type_)), ("id", t(id))],
            Violation::Path { rel_path, context } => vec![("relPath", t(rel_path)), ("context", t(context))],
            Violation::Workflow { type_, from, to } => vec![("type", t(type_)), ("from", t(from)), ("to", t(to))],
            Violation::UnknownWorkflow { workflow_id } => vec![("workflow_id", t(workflow_id))],
            Violation::DeprecatedWorkflow { id } => vec![("id", t(id))],
            Violation::SameAccount { wrong_id } => vec![("wrongId", t(wrong_id))],
            Violation::InvalidFields { fields, type_ } => {
                vec![("fields", FieldValue::Map(fields.clone())), ("type", t(type_))]
            }
            Violation::Permission => Vec::new(),
            Violation::MinLimit { limit, projected, acc_id } | Violation::MaxLimit { limit, projected, acc_id } => {
                vec![
                    ("limit", FieldValue::Amount(*limit)),
                    ("projected", FieldValue::Amount(*projected)),
                    ("accId", t(acc_id)),
                ]
            }
            Violation::DuplicateUuid { uuid } => vec![("uuid", t(uuid))],
            Violation::Other { translated } => vec![("translated", t(translated))],
        }
    }

    /// Shorthand for a single invalid field.
    pub fn invalid_field(type_: &str, field: &str, why: &str) -> Violation {
        Violation::InvalidFields {
            fields: BTreeMap::from([(field.to_owned(), why.to_owned())]),
            type_: type_.to_owned(),
        }
    }
}
