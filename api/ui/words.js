// Words for figures and for the node's Credit Commons error classes.

/** An amount as people read it: a true minus sign, no exponent. */
export function amount(value) {
  if (value === null || value === undefined || value === '') return '';
  const text = String(value);
  return text.startsWith('-') ? `\u2212${text.slice(1)}` : text;
}

/** A number from an amount (for drawing only; figures shown stay exact text). */
export function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function who(id, me) {
  if (!id) return 'an account';
  return id === me ? 'you' : id;
}

function whose(id, me) {
  return id === me ? 'your' : `${id}'s`;
}

const STATE_WORDS = {
  validated: 'waiting for its author to confirm',
  pending: 'waiting for a signature',
  completed: 'completed',
  erased: 'erased',
  timedout: 'timed out',
};

export function stateWords(state) {
  return STATE_WORDS[state] || state;
}

const TRANSITION_WORDS = {
  pending: 'Confirm',
  completed: 'Sign',
  erased: 'Erase',
  null: 'Delete',
  timedout: 'Time out',
  validated: 'Back to validated',
};

/** The button label for moving a transaction to `state`, from its workflow's label when it has one. */
export function transitionLabel(state, workflow, from) {
  const label = workflow && workflow.states && workflow.states[from] && workflow.states[from][state] && workflow.states[from][state].label;
  if (label) return label;
  if (from === 'validated' && state === 'pending') return 'Confirm';
  return TRANSITION_WORDS[state] || state;
}

/** One error object in words. */
export function errorWords(error, me) {
  const e = error || {};
  switch (e.class) {
    case 'MinLimitViolation':
      return `This would take ${who(e.accId, me)} below ${whose(e.accId, me)} limit of ${amount(e.limit)}: the balance would be ${amount(e.projected)}.`;
    case 'MaxLimitViolation':
      return `This would take ${who(e.accId, me)} above ${whose(e.accId, me)} limit of ${amount(e.limit)}: the balance would be ${amount(e.projected)}.`;
    case 'PasswordViolation':
      return 'That key is not right for this account.';
    case 'AuthViolation':
      return `There is no account named ${e.acc_id || 'so'} on this node.`;
    case 'PermissionViolation':
      return 'You are not allowed to do that.';
    case 'DoesNotExistViolation':
      return e.type === 'account' ? `There is no account named ${e.id}.` : `No ${e.type || 'such thing'} ${e.id || ''} here.`.replace(' .', '.');
    case 'PathViolation':
      return `No account at ${e.relPath || 'that path'} in the tree.`;
    case 'SameAccountViolation':
      return 'The payer and the payee must be different accounts.';
    case 'WorkflowViolation':
      return `This ${e.type || 'transaction'} cannot go from ${e.from} to ${e.to}.`;
    case 'UnknownWorkflowViolation':
      return `This node has no workflow ${e.workflow_id}.`;
    case 'DeprecatedWorkflowViolation':
      return `The workflow ${e.id} is no longer in use.`;
    case 'InvalidFieldsViolation': {
      const fields = e.fields && typeof e.fields === 'object' ? Object.entries(e.fields) : [];
      return fields.length ? `Please check: ${fields.map(([k, v]) => `${k} (${v})`).join('; ')}.` : 'Some field is not right.';
    }
    case 'DuplicateUuidViolation':
      return 'This transaction was already written.';
    case 'BlockedViolation':
      return `The account ${e.acc_id || ''} is blocked.`;
    case 'NetworkFailure':
      return `The node could not be reached (${e.translated}).`;
    case 'CCOtherViolation':
    case 'CCFailure':
      return e.translated || e.message || 'The node refused this.';
    default:
      return e.translated || e.message || `The node answered ${e.class || 'an error'}.`;
  }
}

/** Every error of an ApiError in words. */
export function errorsWords(err, me) {
  if (err && Array.isArray(err.errors)) return err.errors.map((e) => errorWords(e, me));
  return [String(err && err.message ? err.message : err)];
}
