//! Soft limits (issue 12, item 5): an account may have warning levels inside
//! its hard limits. Crossing one is allowed; the node journals it as
//! [`Event::WarnLimitCrossed`] so that members and operators see it. Pure:
//! the writer calls [`set`] to decide a change and [`crossings`] after each
//! event it records.

use crate::amount::Amount;
use crate::event::Event;
use crate::ids::{AccountId, TxId};
use crate::model::AccountKind;
use crate::state::LedgerView;
use crate::violation::Violation;

/// An account's soft limits; `None` is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarnLimits {
    /// Warn below this completed balance.
    pub min: Option<Amount>,
    /// Warn above this completed balance.
    pub max: Option<Amount>,
}

impl WarnLimits {
    /// Which soft limit `balance` is beyond: `(below, limit)`.
    pub fn beyond(&self, balance: Amount) -> Option<(bool, Amount)> {
        match (self.min, self.max) {
            (Some(min), _) if balance < min => Some((true, min)),
            (_, Some(max)) if balance > max => Some((false, max)),
            _ => None,
        }
    }
}

/// Decides a change of `id`'s soft limits: the account must be a user's
/// account here, and a soft minimum at most 0, a soft maximum at least 0.
pub fn set(view: &impl LedgerView, id: &AccountId, limits: WarnLimits) -> Result<Event, Violation> {
    let account = view
        .account(id)
        .ok_or_else(|| Violation::DoesNotExist { type_: "account".into(), id: id.as_str().to_owned() })?;
    if !matches!(account.kind, AccountKind::User { .. }) {
        return Err(invalid("id", "soft limits are for members' accounts"));
    }
    if limits.min.is_some_and(|m| m.is_positive()) {
        return Err(invalid("warn_min", "must be <= 0"));
    }
    if limits.max.is_some_and(|m| m.is_negative()) {
        return Err(invalid("warn_max", "must be >= 0"));
    }
    Ok(Event::WarnLimitsChanged { id: id.clone(), warn_min: limits.min, warn_max: limits.max })
}

fn invalid(field: &str, why: &str) -> Violation {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(field.to_owned(), why.to_owned());
    Violation::InvalidFields { type_: "account".into(), fields }
}

/// The accounts with soft limits that `event` may move, with their
/// completed balance now, and the transaction doing it (call before
/// recording the event; nothing when it moves no balance or no watched account).
pub fn watched(view: &impl LedgerView, event: &Event) -> Option<(TxId, Vec<(AccountId, Amount)>)> {
    if !view.any_warn_limits() {
        return None;
    }
    let (uuid, entries) = match event {
        Event::TransactionProposed { transaction } => (transaction.uuid, &transaction.entries),
        Event::TransactionProposedRef { transaction } => (transaction.uuid, &transaction.entries),
        Event::TransactionTransitioned { uuid, .. } => (*uuid, &view.transaction(uuid)?.entries),
        _ => return None,
    };
    let mut out: Vec<(AccountId, Amount)> = Vec::new();
    for entry in entries {
        for id in [&entry.payer, &entry.payee] {
            if view.warn_limits(id).is_some() && !out.iter().any(|(a, _)| a == id) {
                out.push((id.clone(), view.balances(id).completed));
            }
        }
    }
    (!out.is_empty()).then_some((uuid, out))
}

/// The soft limits crossed between `before` (from [`watched`]) and the
/// balances `view` holds now: a balance that was within an account's soft
/// limits and now is beyond one.
pub fn crossings(view: &impl LedgerView, uuid: TxId, before: &[(AccountId, Amount)]) -> Vec<Event> {
    let mut out = Vec::new();
    for (id, old) in before {
        let Some(warn) = view.warn_limits(id) else { continue };
        let new = view.balances(id).completed;
        if let (None, Some((below, limit))) = (warn.beyond(*old), warn.beyond(new)) {
            out.push(Event::WarnLimitCrossed { id: id.clone(), uuid, below, limit, balance: new });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(units: i64) -> Amount {
        Amount::from_units(units)
    }

    #[test]
    fn beyond_names_the_side() {
        let w = WarnLimits { min: Some(a(-20)), max: Some(a(50)) };
        assert_eq!(w.beyond(a(-20)), None, "at the level is not beyond it");
        assert_eq!(w.beyond(a(-21)), Some((true, a(-20))));
        assert_eq!(w.beyond(a(51)), Some((false, a(50))));
        assert_eq!(WarnLimits::default().beyond(a(-1000)), None);
    }
}
