// The one place that knows the server's URLs and how the UI authenticates.
//
// The browser logs in once (POST /api/v1/session) and then rides on an HttpOnly,
// SameSite=Strict session cookie; every request that changes something carries the
// session's CSRF token in `X-CSRF-Token`. `X-Wirecap-UI: 1` asks the server to answer
// 401 without `WWW-Authenticate: Basic`, so that the browser shows our login page and
// not its own password dialog.

let csrf = null;
let onLogout = () => {};

export function setCsrf(token) { csrf = token; }
export function onUnauthorized(f) { onLogout = f; }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.message || body.Str)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json', 'X-Wirecap-UI': '1' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, {
    method, headers, signal, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text.trim() }; }
  if (r.status === 401 && !path.endsWith('/session')) onLogout();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};
const enc = encodeURIComponent;

// Every route the UI uses.
export const session = {
  get: () => api('/api/v1/session'),
  login: (user, password) => api('/api/v1/session', { method: 'POST', body: { user, password } }),
  logout: () => api('/api/v1/session', { method: 'DELETE' }),
};
/** Seconds as /sysmaster/status prints an uptime: `0D 3H 36M`. */
const uptime = (secs) => {
  const m = Math.floor((Number(secs) || 0) / 60);
  return `${Math.floor(m / 1440)}D ${Math.floor(m / 60) % 24}H ${m % 60}M`;
};
/** The JSON status, flattened into the names of /sysmaster/status (plus a few more). */
export async function status() {
  const s = await api('/api/v1/status?history=0');
  const c = s.capture || {};
  const l = s.link || {};
  return {
    capture_active: !!c.active,
    capture_name: c.active ? c.name : 'none',
    capture_stream: c.active ? c.stream : null,
    capture_started_ns: c.active ? c.started_ns : null,
    capture_bytes: s.capture_bytes,
    capture_packets: s.capture_packets,
    capture_bps: s.capture_bps,
    capture_pps: s.capture_pps,
    capture_link: l.up ? 'up' : 'down',
    capture_link_speed: l.speed_mbps,
    capture_link_uptime_s: l.uptime_s,
    capture_link_uptime: uptime(l.uptime_s),
    packets_received: s.packets_received,
    packets_dropped: s.packets_dropped,
    packets_errors: s.packets_errors,
    packets_captured: s.packets_captured,
    packets_pending: s.packets_pending,
    bytes_captured: s.bytes_captured,
    bytes_pending: s.bytes_pending,
    // The appliance's cache figure; wirecap's /sysmaster/status always prints 0.
    bytes_cache: 0,
    bytes_disk: s.bytes_disk,
    uptime_s: s.uptime_s,
    uptime: uptime(s.uptime_s),
    source: s.source,
    drops: s.drops,
    last_error: s.last_error,
    disk_full: s.disk_full,
    hostname: s.hostname,
    // The archive tier (writeback lag, rate, errors), when one is configured.
    archive: s.archive || null,
  };
}
export const history = (seconds) => api(`/api/v1/ui/history${q({ seconds })}`);
export const captureStart = (name) => api('/api/v1/capture/start', { method: 'POST', body: { name } });
export const captureStop = () => api('/api/v1/capture/stop', { method: 'POST', body: {} });
export const streams = (params) => api(`/api/v1/ui/streams${q(params)}`);
export const stream = (name) => api(`/api/v1/ui/streams/${enc(name)}`);
export const views = (name) => api(`/api/v1/ui/streams/${enc(name)}/views`);
export const splits = (name, view, params) => api(`/api/v1/ui/streams/${enc(name)}/views/${enc(view)}/splits${q(params)}`);
export const deleteStream = (name) => api(`/api/v1/streams/${enc(name)}`, { method: 'DELETE' });
export const checkFilter = (body) => api('/api/v1/ui/filter/check', { method: 'POST', body });
export const analysis = (name, body) => api(`/api/v1/ui/streams/${enc(name)}/analysis`, { method: 'POST', body });
export const flows = (params) => api(`/api/v1/flows${q(params)}`);
export const interfaces = () => api('/api/v1/ui/interfaces');
export const setCaptureInterface = (name) => api('/api/v1/ui/capture/interface', { method: 'PUT', body: { interface: name } });
export const system = () => api('/api/v1/ui/system');
export const setHostname = (hostname) => api('/api/v1/hostname', { method: 'PUT', body: { hostname } });
export const users = {
  list: () => api('/api/v1/users'),
  add: (u) => api('/api/v1/users', { method: 'POST', body: u }),
  remove: (name) => api(`/api/v1/users/${enc(name)}`, { method: 'DELETE' }),
  change: (name, body) => api(`/api/v1/users/${enc(name)}`, { method: 'PATCH', body }),
};
export const tokens = {
  list: () => api('/api/v1/tokens'),
  create: (t) => api('/api/v1/tokens', { method: 'POST', body: t }),
  revoke: (name) => api(`/api/v1/tokens/${enc(name)}`, { method: 'DELETE' }),
};
export const alerts = {
  get: () => api('/api/v1/alerts'),
  set: (c) => api('/api/v1/alerts', { method: 'PUT', body: c }),
  test: () => api('/api/v1/alerts/test', { method: 'POST' }),
};
export const reports = {
  list: () => api('/api/v1/reports'),
  start: (recipient) => api('/api/v1/report', { method: 'POST', body: recipient ? { recipient } : {} }),
  job: (id) => api(`/api/v1/report/${enc(id)}`),
};
export const schedules = () => api('/api/v1/schedules');
export const schedule = {
  add: (body) => api('/api/v1/schedules', { method: 'POST', body }),
  put: (name, body) => api(`/api/v1/schedules/${enc(name)}`, { method: 'PUT', body }),
  remove: (name) => api(`/api/v1/schedules/${enc(name)}`, { method: 'DELETE' }),
};
export const captureSettings = () => api('/api/v1/capture/settings');
export const setCaptureSettings = (body) => api('/api/v1/capture/settings', { method: 'PUT', body });
export const analyses = {
  start: (name, body) => api(`/api/v1/ui/streams/${enc(name)}/analyses`, { method: 'POST', body }),
  get: (id) => api(`/api/v1/ui/analyses/${enc(id)}`),
  cancel: (id) => api(`/api/v1/ui/analyses/${enc(id)}`, { method: 'DELETE' }),
};
export const forward = () => api('/api/v1/forward');
export const setForward = (body) => api('/api/v1/forward', { method: 'PUT', body });

// Download links (plain GETs: the browser saves the file; the session cookie authenticates).
export const downloadUrl = {
  stream: (name) => `/pcap/single?StreamName=${enc(name)}`,
  filtered: (name, p) => `/api/v1/streams/${enc(name)}/pcap${q(p)}`,
  search: (p) => `/api/v1/search${q(p)}`,
};

/** Headers for a request whose body is not JSON (a file upload): UI marker and CSRF token. */
export const rawHeaders = (contentType) => ({ 'Content-Type': contentType, 'X-Wirecap-UI': '1', ...(csrf ? { 'X-CSRF-Token': csrf } : {}) });
