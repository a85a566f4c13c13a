//! Workflows in the 0.8.x JSON of `workflows.json` and `GET /workflows`
//! ([`WorkflowJson`], with the reference's `disabled` or ccnode's `active`),
//! an operator's workflows file ([`workflows_from_json`]), and the
//! reference's workflow hash ([`workflow_hash`]). The workflow itself, and
//! its 0.9.x code, is `ledger::Workflow`.

use std::collections::BTreeMap;

use ledger::workflow::{Creation, TransitionRule};
use ledger::{Actor, Direction, State, Workflow, WorkflowError, WorkflowId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// 0.8.x `workflows.json` entry, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowJson {
    /// Id.
    pub id: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Summary.
    #[serde(default)]
    pub summary: String,
    /// `bill`, `credit` or `3rdparty`.
    pub direction: String,
    /// Creation.
    pub creation: CreationJson,
    /// `states.{from}.{to}`.
    pub states: BTreeMap<String, BTreeMap<String, TransitionJson>>,
    /// Offered (ccnode's name; the reference writes `disabled`).
    #[serde(default = "active_default")]
    pub active: bool,
    /// Not offered (the reference's name; wins over `active` when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

fn active_default() -> bool {
    true
}

/// 0.8.x `creation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationJson {
    /// State name.
    pub state: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Confirm step.
    #[serde(default)]
    pub confirm: bool,
}

/// 0.8.x `states.{from}.{to}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionJson {
    /// Label.
    #[serde(default)]
    pub label: String,
    /// `payer`, `payee`, `author`.
    #[serde(default)]
    pub actors: Vec<String>,
}

fn parse_state(field: &'static str, value: &str) -> Result<State, WorkflowError> {
    State::parse(value).ok_or_else(|| WorkflowError::UnknownValue { field, value: value.to_owned() })
}

impl TryFrom<&WorkflowJson> for Workflow {
    type Error = WorkflowError;

    fn try_from(json: &WorkflowJson) -> Result<Workflow, WorkflowError> {
        let direction = match json.direction.as_str() {
            "bill" => Direction::Bill,
            "credit" => Direction::Credit,
            "3rdparty" => Direction::ThirdParty,
            other => return Err(WorkflowError::UnknownValue { field: "direction", value: other.to_owned() }),
        };
        let creation =
            Creation { state: parse_state("creation.state", &json.creation.state)?, confirm: json.creation.confirm };
        let mut transitions = Vec::new();
        for (from, tos) in &json.states {
            for (to, t) in tos {
                let actors = t
                    .actors
                    .iter()
                    .map(|a| match a.as_str() {
                        "payer" => Ok(Actor::Payer),
                        "payee" => Ok(Actor::Payee),
                        "author" => Ok(Actor::Author),
                        other => Err(WorkflowError::UnknownValue { field: "actors", value: other.to_owned() }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (from, to) = (parse_state("states", from)?, parse_state("states", to)?);
                transitions.push(TransitionRule { from, to, actors, label: t.label.clone() });
            }
        }
        Ok(Workflow {
            id: WorkflowId::new(&json.id)?,
            label: json.label.clone(),
            direction,
            creation,
            transitions,
            active: json.disabled.map_or(json.active, |disabled| !disabled),
        })
    }
}

impl From<&Workflow> for WorkflowJson {
    fn from(w: &Workflow) -> WorkflowJson {
        let mut states: BTreeMap<String, BTreeMap<String, TransitionJson>> = BTreeMap::new();
        for r in &w.transitions {
            let actors = r.actors.iter().map(|a| a.name().to_owned()).collect();
            states
                .entry(r.from.name().to_owned())
                .or_default()
                .insert(r.to.name().to_owned(), TransitionJson { label: r.label.clone(), actors });
        }
        WorkflowJson {
            id: w.id.to_string(),
            label: w.label.clone(),
            summary: String::new(),
            direction: w.direction.name().to_owned(),
            creation: CreationJson {
                state: w.creation.state.name().to_owned(),
                label: String::new(),
                confirm: w.creation.confirm,
            },
            states,
            active: w.active,
            disabled: Some(!w.active),
        }
    }
}

/// The reference's workflow hash: `md5(id . json(creation.state) . json(states→actors))`,
/// with the states in definition order. Checked against captured reference keys.
pub fn workflow_hash(workflow: &Workflow) -> String {
    use md5::{Digest, Md5};
    type Tos = Vec<(State, Vec<&'static str>)>;
    let mut states: Vec<(State, Tos)> = Vec::new();
    for rule in &workflow.transitions {
        let actors = rule.actors.iter().map(|a| a.name()).collect();
        match states.iter_mut().find(|(from, _)| *from == rule.from) {
            Some((_, tos)) => tos.push((rule.to, actors)),
            None => states.push((rule.from, vec![(rule.to, actors)])),
        }
    }
    let mut text = String::new();
    text.push_str(workflow.id.as_str());
    text.push_str(&format!("{{\"state\":\"{}\"}}", workflow.creation.state.name()));
    if states.is_empty() {
        text.push_str("[]");
    } else {
        let objects: Vec<String> = states
            .iter()
            .map(|(from, tos)| {
                let inner: Vec<String> =
                    tos.iter().map(|(to, actors)| format!("\"{}\":{}", to.name(), serde_json::json!(actors))).collect();
                format!("\"{}\":{{{}}}", from.name(), inner.join(","))
            })
            .collect();
        text.push_str(&format!("{{{}}}", objects.join(",")));
    }
    ledger::ratchet::hex(&Md5::digest(text.as_bytes()))
}

/// A workflow as the reference's `GET /workflows` shows it, plus its 0.9.x code.
pub fn workflow_json(workflow: &Workflow, home: &str) -> Value {
    let json = WorkflowJson::from(workflow);
    let mut value = serde_json::to_value(&json).expect("workflow JSON serialises");
    if let Value::Object(map) = &mut value {
        map.insert("home".to_owned(), Value::String(home.to_owned()));
        if let Ok(code) = workflow.to_code() {
            map.insert("code".to_owned(), Value::String(code));
        }
    }
    value
}

/// Reads an operator's workflows file in the reference's `workflows.json`
/// format: a JSON array of workflow objects (an object keyed by anything is
/// accepted too), each with `disabled` (reference) or `active`.
pub fn workflows_from_json(text: &str) -> Result<Vec<Workflow>, WorkflowError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| WorkflowError::File { reason: e.to_string() })?;
    let items: Vec<serde_json::Value> = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
        _ => return Err(WorkflowError::File { reason: "expected an array of workflows".to_owned() }),
    };
    let mut workflows = Vec::with_capacity(items.len());
    for item in items {
        let json: WorkflowJson =
            serde_json::from_value(item).map_err(|e| WorkflowError::File { reason: e.to_string() })?;
        let workflow = Workflow::try_from(&json)?;
        if workflows.iter().any(|w: &Workflow| w.id == workflow.id) {
            return Err(WorkflowError::File { reason: format!("workflow id {} appears twice", workflow.id) });
        }
        workflows.push(workflow);
    }
    if workflows.is_empty() {
        return Err(WorkflowError::File { reason: "no workflows".to_owned() });
    }
    Ok(workflows)
}

#[cfg(test)]
mod tests {
    use ledger::workflow::default_workflows;

    use super::*;

    #[test]
    fn reference_json_example() {
        let json = r#"{"id":"credit","label":"Credit","summary":"…","direction":"credit",
     "creation":{"state":"pending","label":"Create","confirm":true},
     "states":{"pending":{"completed":{"label":"Sign","actors":["payee"]},
                          "erased":{"label":"Erase","actors":["payer"]}},
               "completed":{"erased":{"label":"Erase","actors":[]}}},
     "active":true}"#;
        let parsed: WorkflowJson = serde_json::from_str(json).expect("json");
        let w = Workflow::try_from(&parsed).expect("valid");
        // Same semantics as the shipped credit workflow's code.
        assert_eq!(w.to_code().expect("expressible"), "|P-CE0PC+PE-");
        let shipped = default_workflows().into_iter().find(|w| w.id.as_str() == "credit").expect("credit");
        for (from, to) in
            [(State::Pending, State::Completed), (State::Pending, State::Erased), (State::Completed, State::Erased)]
        {
            assert_eq!(w.rule(from, to).map(|r| &r.actors), shipped.rule(from, to).map(|r| &r.actors));
        }
        let back = Workflow::try_from(&WorkflowJson::from(&w)).expect("round trip");
        assert_eq!(back, w);
        let bad: WorkflowJson = serde_json::from_str(&json.replace("\"payee\"]", "\"boss\"]")).expect("json");
        assert!(Workflow::try_from(&bad).is_err());
    }
}
