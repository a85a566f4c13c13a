// The node's public HTTP API, as any client uses it: cc-user and cc-auth on
// every call. The key lives only in this tab's sessionStorage.

const USER = 'ccnode.user';
const KEY = 'ccnode.key';
const ADMIN = 'ccnode.admin';

export function session() {
  const user = sessionStorage.getItem(USER);
  const key = sessionStorage.getItem(KEY);
  return user && key ? { user, key, admin: sessionStorage.getItem(ADMIN) === '1' } : null;
}

export function saveSession(user, key, admin) {
  sessionStorage.setItem(USER, user);
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(ADMIN, admin ? '1' : '0');
}

export function clearSession() {
  sessionStorage.removeItem(USER);
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ADMIN);
}

/** An answer that is not 2xx: the node's Credit Commons error objects. */
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.class).join(', ') || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

async function call(method, path, body, creds, raw) {
  const who = creds || session();
  const headers = {};
  if (who) {
    headers['cc-user'] = who.user;
    headers['cc-auth'] = who.key;
  }
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, [{ class: 'NetworkFailure', translated: String(e.message || e) }]);
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let value = null;
  if (text) {
    try {
      value = JSON.parse(text);
    } catch (_) {
      value = null;
    }
  }
  if (!response.ok) {
    const errors = value && Array.isArray(value.errors) ? value.errors : [{ class: 'HttpFailure', translated: `HTTP ${response.status}` }];
    throw new ApiError(response.status, errors);
  }
  return value;
}

export const get = (path, creds) => call('GET', path, undefined, creds);
export const post = (path, body) => call('POST', path, body);
export const patch = (path, body) => call('PATCH', path, body);
/** A file answer (CSV), as a Response. */
export const download = (path) => call('GET', path, undefined, null, true);

export function q(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
