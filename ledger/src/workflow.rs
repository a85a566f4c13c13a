//! Workflows: who may move a transaction from which state to which.
//!
//! One in-memory model, [`Workflow`], and the 0.9.x compact codes
//! ([`Workflow::from_code`], [`Workflow::to_code`]). The 0.8.x JSON shape is
//! the api crate's (`api::wire::workflow`): this crate has no JSON.
//! docs/PROTOCOL.md "Workflow codes" records how the code grammar is read.

use bincode::{Decode, Encode};

use crate::ids::{NameError, WorkflowId};
use crate::model::State;

/// Longest workflow code, in bytes (bounded by the id length since a parsed
/// code is its own id).
pub const WORKFLOW_CODE_LENGTH_MAX_BYTES: usize = crate::ids::NAME_LENGTH_MAX_BYTES;

/// A role relative to the primary entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum Actor {
    /// The primary entry's payer.
    Payer,
    /// The primary entry's payee.
    Payee,
    /// The transaction's author.
    Author,
}

impl Actor {
    /// 0.8.x JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Actor::Payer => "payer",
            Actor::Payee => "payee",
            Actor::Author => "author",
        }
    }
}

/// Who creates transactions of this workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Direction {
    /// The payee creates (a request for payment). Code sign `+`.
    Bill,
    /// The payer creates. Code sign `-`.
    Credit,
    /// An admin creates for two other accounts. Code sign `0`.
    ThirdParty,
}

impl Direction {
    /// 0.8.x JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Bill => "bill",
            Direction::Credit => "credit",
            Direction::ThirdParty => "3rdparty",
        }
    }
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Creation {
    /// The state it lands in once confirmed (`pending` or `completed`).
    pub state: State,
    /// When true it first waits in `validated` for the author to confirm.
    pub confirm: bool,
}

/// One allowed move.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct TransitionRule {
    /// From this state.
    pub from: State,
    /// To this state.
    pub to: State,
    /// Roles allowed; empty means admins only.
    pub actors: Vec<Actor>,
    /// Button text.
    pub label: String,
}

/// A workflow definition.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Workflow {
    /// Id (`credit`, or the code itself for parsed codes).
    pub id: WorkflowId,
    /// Human label.
    pub label: String,
    /// Who creates.
    pub direction: Direction,
    /// Where creation lands.
    pub creation: Creation,
    /// Allowed moves after creation, in definition order.
    pub transitions: Vec<TransitionRule>,
    /// Offered for new transactions.
    pub active: bool,
}

impl Workflow {
    /// The blake3 hash of the definition's event encoding (the pinned
    /// bincode configuration): its identity in a [`crate::model::WorkflowRef`].
    /// Pinned by the golden fixtures, like every encoded byte.
    pub fn content_hash(&self) -> [u8; 32] {
        let bytes =
            bincode::encode_to_vec(self, crate::event::bincode_config()).expect("encoding into a vec cannot fail");
        *blake3::hash(&bytes).as_bytes()
    }

    /// The rule for `from → to`, if any.
    pub fn rule(&self, from: State, to: State) -> Option<&TransitionRule> {
        self.transitions.iter().find(|r| r.from == from && r.to == to)
    }

    /// The role that creates transactions (`None` for third-party).
    pub fn creator(&self) -> Option<Actor> {
        match self.direction {
            Direction::Bill => Some(Actor::Payee),
            Direction::Credit => Some(Actor::Payer),
            Direction::ThirdParty => None,
        }
    }
}

/// Why a workflow code or JSON definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The code is empty, too long, or has a dangling triple.
    #[error("workflow code {code:?} has bad length")]
    Length {
        /// The code.
        code: String,
    },
    /// A character where the grammar allows something else.
    #[error("workflow code {code:?}: unexpected {found:?} at byte {at}, expected {expected}")]
    Unexpected {
        /// The code.
        code: String,
        /// Offending char.
        found: char,
        /// Its byte offset.
        at: usize,
        /// What the grammar wanted.
        expected: &'static str,
    },
    /// An `author` actor or other shape codes cannot express.
    #[error("workflow {id} cannot be written as a code: {reason}")]
    NotExpressible {
        /// Workflow id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// A JSON field with an unknown value.
    #[error("workflow field {field} has unknown value {value:?}")]
    UnknownValue {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// Bad id.
    #[error("workflow id: {0}")]
    Id(#[from] NameError),
    /// A workflows file that is not a list of workflows.
    #[error("workflows file: {reason}")]
    File {
        /// Why.
        reason: String,
    },
}

fn sign_actor(c: char) -> Option<Option<Actor>> {
    match c {
        '-' => Some(Some(Actor::Payer)),
        '+' => Some(Some(Actor::Payee)),
        '0' => Some(None),
        _ => None,
    }
}

fn actor_sign(actor: Option<Actor>) -> Option<char> {
    match actor {
        Some(Actor::Payer) => Some('-'),
        Some(Actor::Payee) => Some('+'),
        None => Some('0'),
        Some(Actor::Author) => None,
    }
}

struct CodeReader<'a> {
    code: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl CodeReader<'_> {
    fn take(&mut self, expected: &'static str, pick: impl Fn(char) -> bool) -> Result<char, WorkflowError> {
        let &(at, found) =
            self.chars.get(self.pos).ok_or_else(|| WorkflowError::Length { code: self.code.to_owned() })?;
        if !pick(found) {
            return Err(WorkflowError::Unexpected { code: self.code.to_owned(), found, at, expected });
        }
        self.pos += 1;
        Ok(found)
    }

    fn state(&mut self, allowed: &'static str) -> Result<State, WorkflowError> {
        let c = self.take(allowed, |c| allowed.contains(c))?;
        Ok(State::from_letter(c).expect("allowed letters are state letters"))
    }

    fn sign(&mut self) -> Result<Option<Actor>, WorkflowError> {
        let c = self.take("one of - + 0", |c| sign_actor(c).is_some())?;
        Ok(sign_actor(c).expect("checked sign"))
    }
}

impl Workflow {
    /// Parses a 0.9.x code: `('_'|'|') creation-state sign (from to sign)*`.
    pub fn from_code(code: &str) -> Result<Workflow, WorkflowError> {
        if code.is_empty() || code.len() > WORKFLOW_CODE_LENGTH_MAX_BYTES {
            return Err(WorkflowError::Length { code: code.to_owned() });
        }
        let mut r = CodeReader { code, chars: code.char_indices().collect(), pos: 0 };
        let confirm = r.take("_ or |", |c| c == '_' || c == '|')? == '|';
        let state = r.state("PC")?;
        let direction = match r.sign()? {
            Some(Actor::Payer) => Direction::Credit,
            Some(Actor::Payee) => Direction::Bill,
            _ => Direction::ThirdParty,
        };
        let mut transitions: Vec<TransitionRule> = Vec::new();
        while r.pos < r.chars.len() {
            let from = r.state("PC")?;
            let to = r.state("PCEX")?;
            let actor = r.sign()?;
            let rule = match transitions.iter_mut().find(|t| t.from == from && t.to == to) {
                Some(rule) => rule,
                None => {
                    transitions.push(TransitionRule { from, to, actors: Vec::new(), label: String::new() });
                    transitions.last_mut().expect("just pushed")
                }
            };
            if let Some(actor) = actor.filter(|a| !rule.actors.contains(a)) {
                rule.actors.push(actor);
            }
        }
        Ok(Workflow {
            id: WorkflowId::new(code)?,
            label: code.to_owned(),
            direction,
            creation: Creation { state, confirm },
            transitions,
            active: true,
        })
    }

    /// Writes the 0.9.x code. Fails for `author` actors, which codes cannot
    /// express, and for creation states other than P and C.
    pub fn to_code(&self) -> Result<String, WorkflowError> {
        let not = |reason| WorkflowError::NotExpressible { id: self.id.to_string(), reason };
        let mut code = String::new();
        code.push(if self.creation.confirm { '|' } else { '_' });
        if !matches!(self.creation.state, State::Pending | State::Completed) {
            return Err(not("creation state is not P or C"));
        }
        code.push(self.creation.state.letter());
        code.push(actor_sign(self.creator()).expect("creator is never author"));
        for rule in &self.transitions {
            let actors: Vec<Option<Actor>> =
                if rule.actors.is_empty() { vec![None] } else { rule.actors.iter().copied().map(Some).collect() };
            for actor in actors {
                code.push(rule.from.letter());
                code.push(rule.to.letter());
                code.push(actor_sign(actor).ok_or_else(|| not("author actor"))?);
            }
        }
        Ok(code)
    }
}

/// The shipped workflows: the reference's `workflows.json.example`
/// (cc-node 0.8.5 `07149f7`) as it defines them, and ccnode's immediate ones.
///
/// - `bill`: the payee asks, confirms (POST answers 200 `validated`, `PATCH
///   …/pending` 201), the payer signs or the payee erases; an admin may erase
///   a completed bill.
/// - `credit`: the payer proposes and confirms, the payee signs or the payer
///   erases; an admin may erase a completed credit.
/// - `disabled`: inactive, kept so old transactions stay readable
///   (`DeprecatedWorkflowViolation` for new ones).
/// - `3rdparty`: an admin records it, completed at once; an admin may erase.
/// - `pay` (`_C-CE0`) and `payment` (`_C-`): ccnode's immediate payments.
///
/// Transactions carry their workflow whole, so changing this set changes what
/// new transactions do, never how old ones replay.
pub fn default_workflows() -> Vec<Workflow> {
    let named = |id: &str, label: &str, code: &str| {
        let mut w = Workflow::from_code(code).expect("shipped codes parse");
        w.id = WorkflowId::new(id).expect("shipped ids are valid");
        w.label = label.to_owned();
        w
    };
    let reference = |id: &str, label: &str, direction: Direction, state: State, confirm: bool, active: bool| {
        let rule = |from, to, actors: &[Actor], label: &str| TransitionRule {
            from,
            to,
            actors: actors.to_vec(),
            label: label.to_owned(),
        };
        let (signer, eraser) = match direction {
            Direction::Bill => (Actor::Payer, Actor::Payee),
            _ => (Actor::Payee, Actor::Payer),
        };
        let mut transitions = Vec::new();
        if state == State::Pending {
            transitions.push(rule(State::Pending, State::Completed, &[signer], "Sign"));
            transitions.push(rule(State::Pending, State::Erased, &[eraser], "Erase"));
        }
        transitions.push(rule(State::Completed, State::Erased, &[], "Erase"));
        Workflow {
            id: WorkflowId::new(id).expect("shipped ids are valid"),
            label: label.to_owned(),
            direction,
            creation: Creation { state, confirm },
            transitions,
            active,
        }
    };
    vec![
        reference("bill", "Bill", Direction::Bill, State::Pending, true, true),
        reference("credit", "Credit", Direction::Credit, State::Pending, true, true),
        reference("disabled", "Disabled", Direction::Credit, State::Pending, false, false),
        reference("3rdparty", "3rd Party", Direction::ThirdParty, State::Completed, false, true),
        // ccnode's immediate payments: the payer pays, completed at once.
        named("pay", "Pay: payer pays, completes at once; an admin may erase", "_C-CE0"),
        named("payment", "Immediate payment", "_C-"),
    ]
}
