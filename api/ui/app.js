// ccnode's web app: members and operators, over the node's public HTTP API.
// Screens are routed by the location hash (#/home, #/pay, #/tx/UUID, …).

import { session, saveSession, clearSession, get, post, patch, download, q, ApiError } from './api.js';
import { amount, num, stateWords, transitionLabel, errorsWords } from './words.js';
import { balanceChart, historyPoints } from './chart.js';

const PAGE = 10;
let workflowsCache = null;

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return node;
}

const main = () => document.getElementById('main');

function show(title, ...content) {
  const m = main();
  m.replaceChildren(h('h1', { tabindex: '-1', id: 'title' }, title), ...content);
  document.title = `${title} · ccnode`;
  document.getElementById('title').focus();
}

let noticeAt = 0;

function notice(text, kind) {
  const n = document.getElementById('notice');
  noticeAt = Date.now();
  n.replaceChildren(text ? h('div', { class: kind === 'error' ? 'error' : 'ok' }, text) : '');
}

function errorBox(err) {
  const me = session() && session().user;
  const words = errorsWords(err, me);
  const classes = err && err.errors ? err.errors.map((e) => e.class).join(' ') : '';
  return h('div', { class: 'error', role: 'alert', 'data-classes': classes }, words.map((w) => h('p', {}, w)));
}

function signed(value) {
  const text = amount(value);
  return h('span', { class: num(value) < 0 ? 'neg' : num(value) > 0 ? 'pos' : '' }, num(value) > 0 ? `+${text}` : text);
}

function badge(state) {
  return h('span', { class: `badge state-${state}`, title: stateWords(state) }, state);
}

function field(label, input, help) {
  const id = input.id;
  return h('div', {}, h('label', { for: id }, label), input, help ? h('div', { class: 'muted', id: `${id}-help` }, help) : null);
}

async function saveFile(path, name) {
  const response = await download(path);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function downloadButton(label, path, name, id) {
  const button = h('button', { type: 'button', class: 'secondary', id }, label);
  button.addEventListener('click', async () => {
    try {
      await saveFile(path, name);
      notice(`Downloaded ${name}.`);
    } catch (e) {
      notice(errorsWords(e).join(' '), 'error');
    }
  });
  return button;
}

async function workflows() {
  if (!workflowsCache) {
    const answer = await get('/workflows');
    workflowsCache = Object.values(answer.data || {});
  }
  return workflowsCache;
}

function workflowOf(list, id) {
  return list.find((w) => w.id === id);
}

// ---------------------------------------------------------------- layout

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function renderChrome() {
  const s = session();
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!s) {
    nav.hidden = true;
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const links = [['#/home', 'Home'], ['#/pay', 'Pay or request'], ['#/transactions', 'Transactions']];
  if (s.admin) links.push(['#/admin/accounts', 'Accounts'], ['#/admin/health', 'Health'], ['#/admin/warnings', 'Warnings'], ['#/admin/nodes', 'Federation'], ['#/admin/events', 'Events']);
  const here = location.hash.split('?')[0];
  nav.replaceChildren(...links.map(([href, text]) => h('a', { href, 'aria-current': here === href ? 'page' : null }, text)));
  nav.hidden = false;
  const out = h('button', { type: 'button', class: 'secondary', id: 'logout' }, 'Sign out');
  out.addEventListener('click', () => {
    clearSession();
    workflowsCache = null;
    notice('Signed out. Your key was removed from this tab.');
    navigate('#/signin');
  });
  who.replaceChildren(h('span', {}, s.admin ? `${s.user} (operator)` : s.user), out);
}

// ---------------------------------------------------------------- sign in

function signIn() {
  const user = h('input', { id: 'user', name: 'user', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const key = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true });
  const problem = h('div', { id: 'signin-error' });
  const form = h('form', { id: 'signin', novalidate: true },
    field('Account', user), field('Key', key, 'Your key stays in this browser tab only, until you sign out or close it.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'signin-submit' }, 'Sign in')), problem);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.replaceChildren();
    const creds = { user: user.value.trim(), key: key.value };
    if (!creds.user || !creds.key) {
      problem.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'Please give your account and your key.'));
      return;
    }
    try {
      await get('/absolutepath', creds);
      let admin = false;
      try {
        await get('/admin/health', creds);
        admin = true;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 403) throw e;
      }
      saveSession(creds.user, creds.key, admin);
      notice('');
      navigate('#/home');
    } catch (e) {
      problem.replaceChildren(errorBox(e));
    }
  });
  show('Sign in', h('p', {}, 'Sign in with your account name and the key your community gave you.'), h('div', { class: 'card' }, form));
}

// ---------------------------------------------------------------- home

function limitBar(balance, min, max, warn) {
  const lo = num(min), hi = num(max), b = num(balance);
  const span = hi - lo || 1;
  const at = (v) => `${Math.max(0, Math.min(100, ((v - lo) / span) * 100))}%`;
  const mark = h('div', { class: 'mark', id: 'limit-mark' });
  const zero = h('div', { class: 'zero' });
  mark.style.left = at(b);
  zero.style.left = at(0);
  const warns = [];
  for (const level of [warn && warn.warn_min, warn && warn.warn_max]) {
    if (level === null || level === undefined) continue;
    const w = h('div', { class: 'warn', title: `warning level ${amount(level)}` });
    w.style.left = at(num(level));
    warns.push(w);
  }
  const label = `Balance ${amount(balance)} between the limits ${amount(min)} and ${amount(max)}`;
  return h('div', { class: 'limits' },
    h('div', { class: 'track', role: 'meter', 'aria-valuemin': lo, 'aria-valuemax': hi, 'aria-valuenow': b, 'aria-label': label, id: 'limit-bar' }, zero, ...warns, mark),
    h('div', { class: 'ends' }, h('span', {}, `limit ${amount(min)}`), h('span', {}, '0'), h('span', {}, `limit ${amount(max)}`)));
}

/** Transactions waiting for the caller: those whose transitions offer signing or confirming. */
async function waitingForMe(me) {
  const answer = await get(`/transactions${q({ involving: me, states: 'validated,pending', limit: 100, sort: 'written', dir: 'desc' })}`);
  const transitions = (answer.meta && answer.meta.transitions) || {};
  return (answer.data || []).filter((tx) => {
    const t = transitions[tx.uuid] || {};
    return tx.state === 'pending' ? 'completed' in t : 'pending' in t;
  }).map((tx) => ({ tx, transitions: transitions[tx.uuid] || {} }));
}

function otherParty(tx, me) {
  const e = tx.entries[0];
  return e.payer === me ? e.payee : e.payer;
}

function myAmount(tx, me) {
  let total = 0;
  for (const e of tx.entries) {
    if (e.payee === me) total += num(e.quant);
    if (e.payer === me) total -= num(e.quant);
  }
  return Math.round(total * 1e6) / 1e6;
}

function waitingList(items, me) {
  if (!items.length) return h('p', { class: 'muted', id: 'waiting-none' }, 'Nothing waits for you.');
  return h('ul', { id: 'waiting-list' }, items.map(({ tx }) => h('li', {},
    h('a', { href: `#/tx/${tx.uuid}` }, `${tx.entries[0].description || '(no description)'}`),
    ' ', signed(myAmount(tx, me)), ` with ${otherParty(tx, me)} — ${stateWords(tx.state)}`)));
}

async function home() {
  const s = session();
  const me = s.user;
  const [summary, limits, history, pending, waiting, warnings] = await Promise.all([
    get(`/account/summary${q({ acc_path: me })}`),
    get(`/account/limits${q({ acc_path: me })}`),
    get(`/account/history${q({ acc_path: me })}`),
    get(`/transactions${q({ involving: me, states: 'pending', limit: 1000 })}`),
    waitingForMe(me),
    get(`/account/warnings${q({ acc_path: me })}`),
  ]);
  const warn = warnings.data;
  const mine = (summary.data && summary.data[me]) || { completed: { balance: 0 }, pending: { balance: 0 } };
  const lim = (limits.data && limits.data[me]) || { min: 0, max: 0 };
  let pin = 0, pout = 0, nin = 0, nout = 0;
  for (const tx of pending.data || []) {
    const v = myAmount(tx, me);
    if (v > 0) { pin += v; nin += 1; } else if (v < 0) { pout -= v; nout += 1; }
  }
  const balance = mine.completed.balance;
  const chart = balanceChart(historyPoints(history.data), { min: num(lim.min), max: num(lim.max) }, Date.now(),
    `Your balance over time, now ${amount(balance)}`);
  chart.setAttribute('id', 'chart');
  show(`Hello, ${me}`,
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-balance' },
        h('h2', { id: 'h-balance' }, 'Balance'),
        h('div', { class: `big ${num(balance) < 0 ? 'neg' : ''}`, id: 'balance' }, amount(balance)),
        limitBar(balance, lim.min, lim.max, warn),
        warnNote(warn, lim),
        h('p', { class: 'muted', id: 'headroom' },
          `You can spend ${amount(Math.round((num(balance) - num(lim.min)) * 1e6) / 1e6)} more and receive ${amount(Math.round((num(lim.max) - num(balance)) * 1e6) / 1e6)} more.`)),
      h('section', { class: 'card', 'aria-labelledby': 'h-pending' },
        h('h2', { id: 'h-pending' }, 'Pending'),
        h('p', {}, 'Coming in: ', h('strong', { id: 'pending-in' }, amount(Math.round(pin * 1e6) / 1e6)), ` (${nin})`),
        h('p', {}, 'Going out: ', h('strong', { id: 'pending-out' }, amount(Math.round(pout * 1e6) / 1e6)), ` (${nout})`),
        h('p', { class: 'muted' }, `Counting pending ones, your balance would be ${amount(mine.pending.balance)}.`))),
    h('section', { class: `card ${waiting.length ? 'waiting' : ''}`, 'aria-labelledby': 'h-waiting', id: 'waiting' },
      h('h2', { id: 'h-waiting' }, `Waiting for you (${waiting.length})`), waitingList(waiting, me)),
    h('section', { class: 'card', 'aria-labelledby': 'h-chart' }, h('h2', { id: 'h-chart' }, 'Balance over time'), chart),
    h('div', { class: 'actions' }, h('a', { class: 'button', href: '#/pay', id: 'go-pay' }, 'Pay or request'),
      h('a', { class: 'button secondary', href: '#/transactions' }, 'All transactions')));
}

/** The member's soft limits in words: where they are, and whether the balance is beyond one. */
function warnNote(warn, lim) {
  if (!warn || (warn.warn_min === null && warn.warn_max === null)) return null;
  const levels = [warn.warn_min !== null ? `below ${amount(warn.warn_min)}` : null, warn.warn_max !== null ? `above ${amount(warn.warn_max)}` : null].filter(Boolean).join(' or ');
  if (warn.beyond) {
    const level = warn.beyond === 'below' ? warn.warn_min : warn.warn_max;
    const hard = warn.beyond === 'below' ? lim.min : lim.max;
    return h('div', { class: 'warning', role: 'status', id: 'warn-note' },
      `Your balance is ${warn.beyond} your community's warning level of ${amount(level)}. Payments still go through up to your limit of ${amount(hard)}.`);
  }
  return h('p', { class: 'muted', id: 'warn-note' }, `Your community is warned when your balance goes ${levels}.`);
}

// ---------------------------------------------------------------- pay or request

function workflowHelp(w) {
  const mine = w.direction === 'bill' ? 'You ask the other account to pay you' : 'You pay the other account';
  const how = w.creation && w.creation.state === 'completed' ? 'at once' : w.direction === 'bill' ? 'once they sign' : 'once they sign';
  const confirm = w.creation && w.creation.confirm ? '; you confirm it first' : '';
  return `${mine}, ${how}${confirm}.`;
}

async function pay() {
  const s = session();
  // Immediate payments first: the most common thing to do.
  const immediate = (w) => (w.creation && w.creation.state === 'completed' ? 0 : 1);
  const list = (await workflows())
    .filter((w) => w.active && !w.disabled && (w.direction === 'credit' || w.direction === 'bill'))
    .sort((a, b) => immediate(a) - immediate(b) || a.id.localeCompare(b.id));
  if (!list.length) {
    show('Pay or request', h('p', {}, 'This node offers no workflow for payments.'));
    return;
  }
  const radios = list.map((w, i) => {
    const input = h('input', { type: 'radio', name: 'workflow', value: w.id, id: `wf-${w.id}`, checked: i === 0 });
    return h('label', { for: `wf-${w.id}` }, input, h('span', {}, h('strong', {}, w.label || w.id), ' — ', workflowHelp(w)));
  });
  const names = h('datalist', { id: 'names-list' });
  const partner = h('input', { id: 'partner', name: 'partner', list: 'names-list', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', required: true });
  const quant = h('input', { id: 'amount', name: 'amount', inputmode: 'decimal', required: true });
  const description = h('input', { id: 'description', name: 'description', maxlength: '255' });
  const result = h('div', { id: 'pay-result' });
  let timer = null;
  partner.addEventListener('input', () => {
    clearTimeout(timer);
    const fragment = partner.value.trim();
    timer = setTimeout(async () => {
      try {
        const answer = await get(`/account/names${q({ acc_path: fragment, limit: 12 })}`);
        names.replaceChildren(...(answer.data || []).filter((n) => n !== s.user).map((n) => h('option', { value: n })));
      } catch (_) {
        names.replaceChildren();
      }
    }, 150);
  });
  const submit = h('button', { type: 'submit', id: 'pay-submit' }, 'Send');
  const form = h('form', { id: 'pay-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'What do you want to do?'), radios),
    field('Other account (name, or a path such as branch2/carol)', partner), names,
    field('Amount', quant), field('Description', description),
    h('div', { class: 'actions' }, submit), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    const chosen = form.querySelector('input[name=workflow]:checked');
    const w = workflowOf(list, chosen && chosen.value);
    const other = partner.value.trim();
    const value = quant.value.trim().replace(',', '.');
    if (!other || !/^\d+(\.\d{1,6})?$/.test(value) || Number(value) <= 0) {
      result.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'Please give the other account and an amount greater than 0 (a number, at most 6 decimals).'));
      return;
    }
    const body = w.direction === 'bill'
      ? { payer: other, payee: s.user, quant: value, description: description.value, type: w.id }
      : { payer: s.user, payee: other, quant: value, description: description.value, type: w.id };
    submit.disabled = true;
    try {
      const answer = await post('/transaction', body);
      const tx = answer.data;
      if (tx.state === 'completed') notice(`Done: ${w.direction === 'bill' ? 'received' : 'paid'} ${amount(value)} ${w.direction === 'bill' ? 'from' : 'to'} ${other}.`);
      else if (tx.state === 'validated') notice('Written as a draft: check it and confirm it below.');
      else notice(`Sent: it now waits for ${other} to sign.`);
      navigate(`#/tx/${tx.uuid}`);
    } catch (e) {
      result.replaceChildren(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  show('Pay or request', h('div', { class: 'card' }, form));
}

// ---------------------------------------------------------------- one transaction

async function transaction(uuid) {
  const s = session();
  const [answer, list] = await Promise.all([get(`/transaction/${encodeURIComponent(uuid)}`), workflows()]);
  const tx = answer.data;
  const offered = (answer.meta && answer.meta.transitions && answer.meta.transitions[tx.uuid]) || {};
  const w = workflowOf(list, tx.type);
  const result = h('div', { id: 'tx-result' });
  const buttons = Object.entries(offered).map(([state, path]) => {
    const b = h('button', { type: 'button', class: state === 'erased' || state === 'null' ? 'danger' : '', 'data-state': state, id: `to-${state}` },
      transitionLabel(state === 'null' ? 'erased' : state, w, tx.state));
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await patch(path);
        notice(`The transaction is now ${stateWords(state === 'null' ? 'erased' : state)}.`);
        if (state === 'null') navigate('#/transactions');
        else await transaction(uuid);
      } catch (e) {
        result.replaceChildren(errorBox(e));
        b.disabled = false;
      }
    });
    return b;
  });
  const rows = tx.entries.map((e) => h('tr', {}, h('td', {}, e.payer), h('td', {}, e.payee), h('td', { class: 'num' }, amount(e.quant)), h('td', {}, e.description || '')));
  show(tx.entries[0].description || 'Transaction',
    h('div', { class: 'card' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'State'), h('dd', { id: 'tx-state' }, badge(tx.state), ' ', stateWords(tx.state)),
        h('dt', {}, 'For you'), h('dd', { id: 'tx-mine' }, signed(myAmount(tx, s.user))),
        h('dt', {}, 'Workflow'), h('dd', {}, w ? w.label || w.id : tx.type),
        h('dt', {}, 'Written by'), h('dd', {}, tx.author),
        h('dt', {}, 'Written'), h('dd', {}, `${tx.written} UTC`),
        h('dt', {}, 'Id'), h('dd', {}, tx.uuid)),
      h('h2', {}, 'Entries'),
      h('div', { class: 'tablewrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Payer'), h('th', {}, 'Payee'), h('th', { class: 'num' }, 'Amount'), h('th', {}, 'Description'))), h('tbody', {}, rows))),
      h('h2', {}, 'What you can do'),
      buttons.length ? h('div', { class: 'actions', id: 'tx-actions' }, buttons) : h('p', { class: 'muted', id: 'tx-actions' }, 'Nothing: this transaction needs nobody else, or not you.'),
      result),
    h('p', {}, h('a', { href: '#/transactions' }, 'Back to transactions')));
}

// ---------------------------------------------------------------- transactions

async function transactions(params) {
  const s = session();
  const me = s.user;
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const dir = params.get('dir') || 'all';
  const state = params.get('state') || '';
  const text = params.get('text') || '';
  const since = params.get('since') || '';
  const until = params.get('until') || '';
  const filter = { states: state, description: text, since, until: until ? `${until} 23:59:59` : '', limit: PAGE, offset, sort: 'written', dir: 'desc' };
  if (dir === 'in') filter.payee = me; else if (dir === 'out') filter.payer = me; else filter.involving = me;
  const [answer, waiting] = await Promise.all([get(`/transactions${q(filter)}`), waitingForMe(me)]);
  const total = (answer.meta && answer.meta.number_of_results) || 0;
  const transitions = (answer.meta && answer.meta.transitions) || {};
  const select = (id, label, value, options) => {
    const sel = h('select', { id, name: id }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
    return h('div', {}, h('label', { for: id }, label), sel);
  };
  const input = (id, label, value, type) => h('div', {}, h('label', { for: id }, label), h('input', { id, name: id, value, type: type || 'text' }));
  const form = h('form', { class: 'filters', id: 'filters' },
    select('f-dir', 'Direction', dir, [['all', 'In and out'], ['in', 'Coming in'], ['out', 'Going out']]),
    select('f-state', 'State', state, [['', 'Any'], ['pending', 'Pending'], ['completed', 'Completed'], ['validated', 'Draft (validated)'], ['erased', 'Erased']]),
    input('f-text', 'Description has', text), input('f-since', 'From', since, 'date'), input('f-until', 'Until', until, 'date'),
    h('div', {}, h('button', { type: 'submit', id: 'f-apply' }, 'Filter')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    const set = (k, id) => { const v = form.querySelector(`#${id}`).value; if (v && v !== 'all') p.set(k, v); };
    set('dir', 'f-dir'); set('state', 'f-state'); set('text', 'f-text'); set('since', 'f-since'); set('until', 'f-until');
    navigate(`#/transactions${p.toString() ? `?${p}` : ''}`);
  });
  const page = (o) => { const p = new URLSearchParams(params); p.set('offset', String(o)); return `#/transactions?${p}`; };
  const rows = (answer.data || []).map((tx) => {
    const t = transitions[tx.uuid] || {};
    const needsMe = tx.state === 'pending' ? 'completed' in t : tx.state === 'validated' && 'pending' in t;
    return h('tr', { class: needsMe ? 'waiting' : '' },
      h('td', {}, tx.written.slice(0, 10)),
      h('td', {}, h('a', { href: `#/tx/${tx.uuid}` }, tx.entries[0].description || '(no description)')),
      h('td', {}, otherParty(tx, me)),
      h('td', { class: 'num' }, signed(myAmount(tx, me))),
      h('td', {}, badge(tx.state), needsMe ? ' waits for you' : ''));
  });
  const last = Math.max(0, Math.ceil(total / PAGE) - 1);
  const current = Math.floor(offset / PAGE);
  show('Transactions',
    h('section', { class: `card ${waiting.length ? 'waiting' : ''}`, id: 'waiting', 'aria-labelledby': 'h-waiting' },
      h('h2', { id: 'h-waiting' }, `Waiting for your signature (${waiting.length})`), waitingList(waiting, me)),
    h('div', { class: 'card' }, form),
    h('p', { id: 'tx-count' }, `${total} transaction${total === 1 ? '' : 's'}`),
    h('div', { class: 'tablewrap' }, h('table', { id: 'tx-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Date'), h('th', {}, 'Description'), h('th', {}, 'With'), h('th', { class: 'num' }, 'Amount'), h('th', {}, 'State'))),
      h('tbody', {}, rows))),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      current > 0 ? h('a', { href: page((current - 1) * PAGE), id: 'prev', rel: 'prev' }, 'Previous') : null,
      h('span', { id: 'page-of' }, `Page ${current + 1} of ${last + 1}`),
      current < last ? h('a', { href: page((current + 1) * PAGE), id: 'next', rel: 'next' }, 'Next') : null),
    h('div', { class: 'actions' }, downloadButton('Download my statement (CSV)', `/account/statement${q({ acc_path: me })}`, `statement-${me}.csv`, 'statement-csv')));
}

// ---------------------------------------------------------------- operators

async function adminAccounts() {
  const answer = await get('/admin/accounts');
  const rows = (answer.data || []).map((a) => h('tr', { 'data-account': a.id },
    h('td', {}, h('a', { href: `#/admin/account/${encodeURIComponent(a.id)}` }, a.id)),
    h('td', {}, a.kind), h('td', {}, a.status),
    h('td', { class: 'num' }, amount(a.min)), h('td', { class: 'num' }, amount(a.max)),
    h('td', { class: 'num' }, amount(a.balance)), h('td', { class: 'num' }, amount(a.pending)),
    h('td', {}, [a.warn_min !== null ? `< ${amount(a.warn_min)}` : '', a.warn_max !== null ? `> ${amount(a.warn_max)}` : ''].filter(Boolean).join(', '))));
  const id = h('input', { id: 'new-id', name: 'id', autocapitalize: 'off', spellcheck: 'false', required: true });
  const key = h('input', { id: 'new-key', name: 'key', type: 'password', autocomplete: 'new-password', required: true });
  const min = h('input', { id: 'new-min', name: 'min', inputmode: 'decimal', placeholder: 'node default' });
  const max = h('input', { id: 'new-max', name: 'max', inputmode: 'decimal', placeholder: 'node default' });
  const admin = h('input', { id: 'new-admin', name: 'admin', type: 'checkbox' });
  const result = h('div', { id: 'new-result' });
  const form = h('form', { id: 'new-account', novalidate: true },
    field('Account id', id), field('Key (give it to the member)', key), field('Lower limit', min), field('Upper limit', max),
    h('label', { for: 'new-admin' }, admin, ' Operator (admin)'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'new-submit' }, 'Create account')), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { id: id.value.trim(), key: key.value, admin: admin.checked };
    if (min.value.trim()) body.min = min.value.trim();
    if (max.value.trim()) body.max = max.value.trim();
    try {
      await post('/admin/accounts', body);
      notice(`Account ${body.id} created.`);
      await adminAccounts();
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  });
  show('Accounts',
    h('div', { class: 'tablewrap' }, h('table', { id: 'accounts' },
      h('thead', {}, h('tr', {}, ['Account', 'Kind', 'Status'].map((t) => h('th', {}, t)), ['Lower limit', 'Upper limit', 'Balance', 'With pending'].map((t) => h('th', { class: 'num' }, t)), h('th', {}, 'Warns'))),
      h('tbody', {}, rows))),
    h('div', { class: 'actions' },
      downloadButton('All accounts (CSV)', '/admin/export/accounts', 'accounts.csv', 'accounts-csv'),
      downloadButton('All transactions (CSV)', '/admin/export/transactions', 'transactions.csv', 'transactions-csv')),
    h('h2', {}, 'New account'), h('div', { class: 'card' }, form));
}

async function adminAccount(id) {
  const answer = await get('/admin/accounts');
  const a = (answer.data || []).find((x) => x.id === id);
  if (!a) {
    show('No such account', h('p', {}, `There is no account ${id}.`), h('a', { href: '#/admin/accounts' }, 'Back to accounts'));
    return;
  }
  const result = h('div', { id: 'edit-result' });
  const change = async (body, done) => {
    result.replaceChildren();
    try {
      await patch(`/admin/accounts/${encodeURIComponent(id)}`, body);
      notice(done);
      await adminAccount(id);
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
  const min = h('input', { id: 'edit-min', name: 'min', inputmode: 'decimal', value: String(a.min) });
  const max = h('input', { id: 'edit-max', name: 'max', inputmode: 'decimal', value: String(a.max) });
  const limits = h('form', { id: 'edit-limits', novalidate: true }, field('Lower limit', min), field('Upper limit', max),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'edit-limits-submit' }, 'Save limits')));
  limits.addEventListener('submit', (ev) => { ev.preventDefault(); change({ min: min.value.trim(), max: max.value.trim() }, `Limits of ${id} saved.`); });
  const level = (v) => (v === null || v === undefined ? '' : String(v));
  const wmin = h('input', { id: 'edit-warn-min', name: 'warn_min', inputmode: 'decimal', value: level(a.warn_min), placeholder: 'none' });
  const wmax = h('input', { id: 'edit-warn-max', name: 'warn_max', inputmode: 'decimal', value: level(a.warn_max), placeholder: 'none' });
  const warnForm = h('form', { id: 'edit-warn', novalidate: true },
    field('Warn below (soft lower limit, empty for none)', wmin), field('Warn above (soft upper limit, empty for none)', wmax),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'edit-warn-submit' }, 'Save warning levels')));
  warnForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    change({ warn_min: wmin.value.trim() || 'none', warn_max: wmax.value.trim() || 'none' }, `Warning levels of ${id} saved.`);
  });
  const blocked = a.status === 'blocked';
  const block = h('button', { type: 'button', id: 'edit-block', class: blocked ? '' : 'danger' }, blocked ? 'Unblock' : 'Block');
  block.addEventListener('click', () => change({ status: blocked ? 'active' : 'blocked' }, `${id} is now ${blocked ? 'active' : 'blocked'}.`));
  const key = h('input', { id: 'edit-key', name: 'key', type: 'password', autocomplete: 'new-password' });
  const reset = h('form', { id: 'edit-keyform', novalidate: true }, field('New key', key),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'edit-key-submit' }, 'Reset key')));
  reset.addEventListener('submit', (ev) => { ev.preventDefault(); change({ key: key.value }, `The key of ${id} was replaced.`); });
  show(`Account ${id}`,
    h('div', { class: 'card' }, h('dl', { class: 'facts' },
      h('dt', {}, 'Kind'), h('dd', {}, a.kind), h('dt', {}, 'Status'), h('dd', { id: 'edit-status' }, a.status),
      h('dt', {}, 'Balance'), h('dd', {}, amount(a.balance)), h('dt', {}, 'Limits'), h('dd', { id: 'edit-limits-now' }, `${amount(a.min)} to ${amount(a.max)}`),
      h('dt', {}, 'Warning levels'), h('dd', { id: 'edit-warn-now' }, `${a.warn_min === null ? 'none' : amount(a.warn_min)} and ${a.warn_max === null ? 'none' : amount(a.warn_max)}`)),
    limitBar(a.balance, a.min, a.max, a)),
    result,
    h('h2', {}, 'Limits'), h('div', { class: 'card' }, limits),
    h('h2', {}, 'Warning levels'), h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Crossing a warning level is allowed; it is journaled and shown to the member and on the Warnings screen.'), warnForm),
    h('h2', {}, 'Access'), h('div', { class: 'card' }, h('div', { class: 'actions' }, block), reset),
    h('div', { class: 'actions' }, downloadButton(`Statement of ${id} (CSV)`, `/account/statement${q({ acc_path: id })}`, `statement-${id}.csv`, 'edit-statement-csv')),
    h('p', {}, h('a', { href: '#/admin/accounts' }, 'Back to accounts')));
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.flatMap(([k, v, id]) => [h('dt', {}, k), h('dd', { id }, v === null || v === undefined ? '—' : String(v))]));
}

async function adminHealth() {
  const d = (await get('/admin/health')).data;
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  show('Health',
    h('div', { class: 'card' }, facts([
      ['Node', d.name, 'health-name'],
      ['Writing', d.writing ? 'yes' : `no: ${d.read_only || 'the writer stopped'}`, 'health-writing'],
      ['Journal head (seq)', d.journal.head_seq, 'health-head'],
      ['Last record written', d.journal.last_recorded_at, 'health-last'],
      ['Journal on disk', kib(d.journal.bytes), 'health-journal-bytes'],
      ['Read model at seq', d.projections.seq, 'health-projections'],
      ['Snapshot store on disk', kib(d.projections.bytes), 'health-snapshot-bytes'],
      ['Accounts', d.accounts, 'health-accounts'],
      ['Transactions', d.transactions, 'health-transactions'],
      ['Neighbours', d.neighbours.join(', ') || 'none', 'health-neighbours'],
      ['Closed links', Object.keys(d.closed_links).join(', ') || 'none', 'health-closed'],
    ])),
    h('p', { class: 'muted' }, 'A full check of the journal is `ccnode verify --data DIR` (offline); see docs/OPERATIONS.md.'));
}

/** A link's reconciliation verdict in words. */
function verdictWords(report) {
  switch (report.verdict) {
    case 'in_sync': return ['agreed', 'pos'];
    case 'we_are_behind': return [`agreed after copying ${report.applied || 0} missed version(s) from the neighbour`, 'pos'];
    case 'peer_behind': return ['the neighbour is behind; it catches up when it reconciles', ''];
    case 'diverged': return ['diverged: the link is closed', 'neg'];
    default: return [String(report.verdict), ''];
  }
}

async function adminNodes() {
  const [nodes, health] = await Promise.all([get('/admin/nodes'), get('/admin/health')]);
  const closed = health.data.closed_links || {};
  const result = h('div', { id: 'nodes-result' });
  const entries = Object.entries(nodes.data || {});
  const checks = [];
  const rows = entries.map(([name, n]) => {
    const isClosed = name in closed;
    const state = h('td', { class: 'link-state', id: `link-${name}`, 'data-verdict': isClosed ? 'closed' : 'checking' },
      isClosed ? h('span', { class: 'neg' }, 'closed after a divergence') : 'checking…');
    const check = async () => {
      try {
        const report = (await post(`/replay/reconcile/${encodeURIComponent(name)}`)).data;
        const [words, cls] = verdictWords(report);
        state.setAttribute('data-verdict', report.verdict);
        state.replaceChildren(h('span', { class: cls }, words));
        if (report.verdict === 'diverged') result.replaceChildren(h('pre', {}, JSON.stringify(report.evidence, null, 2)));
      } catch (e) {
        state.setAttribute('data-verdict', 'error');
        state.replaceChildren(h('span', { class: 'neg' }, errorsWords(e).join(' ')));
      }
    };
    const reconcile = h('button', { type: 'button', class: 'secondary', id: `reconcile-${name}` }, 'Check now');
    reconcile.addEventListener('click', check);
    // Komunitin links have no link feed to compare; closed ones wait for an operator.
    if (!isClosed && n.dialect !== 'komunitin') checks.push(check);
    else if (!isClosed) state.replaceChildren('not compared (Komunitin link)');
    const reopen = isClosed ? h('button', { type: 'button', id: `reopen-${name}` }, 'Reopen') : null;
    if (reopen) reopen.addEventListener('click', async () => {
      try {
        await post(`/admin/nodes/${encodeURIComponent(name)}/reopen`);
        notice(`The link to ${name} is open again.`);
        await adminNodes();
      } catch (e) {
        result.replaceChildren(errorBox(e));
      }
    });
    return h('tr', { 'data-node': name },
      h('td', {}, name), h('td', {}, n.kind || ''), h('td', {}, n.dialect || ''), h('td', {}, n.url || ''), h('td', { class: 'num' }, n.rate || ''),
      h('td', { class: 'num' }, String(n.versions)), h('td', {}, h('code', {}, String(n.last_hash || '').slice(0, 12))),
      state, h('td', {}, h('div', { class: 'actions' }, n.dialect === 'komunitin' ? null : reconcile, reopen)));
  });
  const evidence = Object.entries(closed).map(([name, ev]) => h('div', { class: 'card' }, h('h2', {}, `Evidence for ${name}`), h('pre', {}, JSON.stringify(ev, null, 2))));
  show('Federation',
    entries.length ? h('div', { class: 'tablewrap' }, h('table', { id: 'nodes' },
      h('thead', {}, h('tr', {}, ['Node', 'Side', 'Dialect', 'URL', 'Rate', 'Versions', 'Last hash', 'Link', 'Actions'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows))) : h('p', { id: 'nodes-none' }, 'This node has no neighbours.'),
    result, evidence,
    h('p', { class: 'muted' }, 'Opening this page compares each link\'s log with the neighbour\'s now (as the node does by itself every few seconds) and copies versions one side missed; "agreed" means both sides hold the same hash chain.'));
  for (const check of checks) check();
}

async function adminWarnings() {
  const answer = await get('/admin/warnings');
  const rows = (answer.data || []).map((w) => h('tr', { 'data-account': w.account },
    h('td', {}, w.at.slice(0, 19).replace('T', ' ')),
    h('td', {}, h('a', { href: `#/admin/account/${encodeURIComponent(w.account)}` }, w.account)),
    h('td', {}, `${w.side} ${amount(w.limit)}`),
    h('td', { class: 'num' }, amount(w.balance)),
    h('td', {}, h('a', { href: `#/tx/${w.uuid}` }, 'transaction'))));
  show('Warnings',
    h('p', {}, 'Every time a balance went beyond its account\'s warning level, newest first.'),
    rows.length ? h('div', { class: 'tablewrap' }, h('table', { id: 'warnings' },
      h('thead', {}, h('tr', {}, ['When (UTC)', 'Account', 'Level crossed', 'Balance then', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows))) : h('p', { id: 'warnings-none' }, 'No warning level was crossed.'));
}

async function adminEvents(params) {
  const head = (await get('/admin/health')).data.journal.head_seq;
  const after = params.has('after') ? Math.max(0, parseInt(params.get('after'), 10) || 0) : Math.max(0, head - 25);
  const answer = await get(`/replay/events${q({ after, limit: 25 })}`);
  const rows = (answer.data || []).map((r) => {
    const ev = { ...r.event };
    const type = ev.type;
    delete ev.type;
    return h('tr', {}, h('td', { class: 'num' }, String(r.seq)), h('td', {}, r.recorded_at), h('td', {}, type), h('td', {}, h('code', {}, JSON.stringify(ev).slice(0, 240))));
  });
  show('Events',
    h('p', {}, `The journal, newest ${rows.length} records after seq ${after} (head ${head}).`),
    h('div', { class: 'tablewrap' }, h('table', { id: 'events' }, h('thead', {}, h('tr', {}, ['Seq', 'Recorded', 'Event', 'Facts'].map((t) => h('th', {}, t)))), h('tbody', {}, rows))),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      after > 0 ? h('a', { href: `#/admin/events?after=${Math.max(0, after - 25)}`, id: 'events-older' }, 'Older') : null,
      after + 25 < head ? h('a', { href: `#/admin/events?after=${after + 25}`, id: 'events-newer' }, 'Newer') : null));
}

// ---------------------------------------------------------------- router

async function route() {
  const s = session();
  const [path, query] = (location.hash.slice(1) || '/home').split('?');
  const params = new URLSearchParams(query || '');
  renderChrome();
  if (!s) {
    signIn();
    return;
  }
  const parts = path.split('/').filter(Boolean);
  try {
    if (parts[0] === 'signin') navigate('#/home');
    else if (parts[0] === 'pay') await pay();
    else if (parts[0] === 'transactions') await transactions(params);
    else if (parts[0] === 'tx' && parts[1]) await transaction(decodeURIComponent(parts[1]));
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'accounts') await adminAccounts();
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'account' && parts[2]) await adminAccount(decodeURIComponent(parts[2]));
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'health') await adminHealth();
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'nodes') await adminNodes();
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'events') await adminEvents(params);
    else if (parts[0] === 'admin' && s.admin && parts[1] === 'warnings') await adminWarnings();
    else await home();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearSession();
      renderChrome();
      signIn();
      document.getElementById('signin-error').replaceChildren(errorBox(e));
      return;
    }
    show('Something went wrong', errorBox(e), h('p', {}, h('a', { href: '#/home' }, 'Home')));
  }
  document.body.setAttribute('data-ready', location.hash || '#/home');
}

window.addEventListener('hashchange', () => {
  document.body.removeAttribute('data-ready');
  // A notice belongs to the screen it was given on, or to the move it caused.
  if (Date.now() - noticeAt > 1500) notice('');
  route();
});
// The skip link moves focus to the screen's content without changing screen.
document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main').focus();
});
// A module script runs once the document is parsed.
route();
