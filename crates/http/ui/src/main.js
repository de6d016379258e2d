// The app shell: login, the top bar with the REC indicator, the side menu, hash routing.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import * as API from './api.js';
import { html, parseHash, usePoll, fmtDuration, nsToSec } from './ui.js';

// Pages load on first visit (the dashboard's chart library is not needed to list files).
const loaded = new Map();
const PAGE_MODULES = {
  Dashboard: () => import('./pages/dashboard.js'),
  Capture: () => import('./pages/capture.js'),
  Files: () => import('./pages/files.js'),
  StreamPage: () => import('./pages/files.js'),
  Analysis: () => import('./pages/analysis.js'),
  Flows: () => import('./pages/flows.js'),
  Config: () => import('./pages/config.js'),
  Tools: () => import('./pages/tools.js'),
};
function Page({ name, ...props }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState(null);
  const C = loaded.get(name);
  useEffect(() => {
    if (C) return undefined;
    let live = true;
    PAGE_MODULES[name]().then((m) => { loaded.set(name, m[name]); if (live) setTick((x) => x + 1); }, (e) => live && setError(e));
    return () => { live = false; };
  }, [name]);
  if (error) return html`<div class="msg error">Could not load this page: ${String(error.message || error)}</div>`;
  return C ? html`<${C} ...${props} />` : html`<p class="muted">Loading…</p>`;
}

const root = document.getElementById('app');
const hostname = root.dataset.hostname && !root.dataset.hostname.startsWith('{{') ? root.dataset.hostname : location.hostname;

const PAGES = [
  ['dashboard', 'Dashboard'],
  ['capture', 'Capture'],
  ['files', 'Files'],
  ['analysis', 'Analysis'],
  ['flows', 'Flows'],
  ['config', 'Config'],
  ['tools', 'Tools'],
];

function Login({ onLogin }) {
  const [user, setUser] = useState('admin');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLogin(await API.session.login(user, password));
    } catch (err) {
      setError(err.status === 401 ? 'Wrong user name or password.' : err.status === 429 ? 'Too many attempts: wait a few seconds and try again.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="login">
    <form onSubmit=${submit} aria-label="Sign in">
      <h1><img src="/ui/icon.svg" alt="" /> wirecap</h1>
      <p class="muted mono">${hostname}</p>
      ${error && html`<div class="msg error" role="alert">${error}</div>`}
      <label for="user">User</label>
      <input id="user" name="user" autocomplete="username" value=${user} onInput=${(e) => setUser(e.target.value)} />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" autofocus
        value=${password} onInput=${(e) => setPassword(e.target.value)} />
      <button class="primary" type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </div>`;
}

/** REC badge shown in the top bar of every page while a capture runs. */
function RecIndicator({ status }) {
  if (!status || !status.capture_active) return html`<span class="rec-idle muted" data-test="rec-idle"></span>`;
  const started = status.capture_started_ns ? nsToSec(status.capture_started_ns) : null;
  return html`<a href="#/capture" class="rec" title="capture running" data-test="rec">REC</a>
    <span class="rec-name">${status.capture_name}${started ? ` · ${fmtDuration(Date.now() / 1000 - started)}` : ''}</span>`;
}

function Shell({ me, onLogout }) {
  const [route, setRoute] = useState(parseHash(location.hash));
  const [status, setStatus] = useState(null);
  const [statusError, setStatusError] = useState(null);
  useEffect(() => {
    const f = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  const refresh = async () => {
    try {
      setStatus(await API.status());
      setStatusError(null);
    } catch (e) {
      setStatusError(e);
    }
  };
  usePoll(refresh, 1000);

  const page = route.parts[0] || 'dashboard';
  // The page came with the hostname; the status keeps it current after a change.
  const host = (status && status.hostname) || hostname;
  useEffect(() => {
    const label = (PAGES.find(([p]) => p === page) || [0, 'wirecap'])[1];
    document.title = `${status && status.capture_active ? '● ' : ''}${label} · ${host} · wirecap`;
  }, [page, status && status.capture_active, host]);

  const props = { status, refresh, route };
  let body;
  switch (page) {
    case 'dashboard': body = html`<${Page} name="Dashboard" ...${props} />`; break;
    case 'capture': body = html`<${Page} name="Capture" ...${props} />`; break;
    case 'files': body = route.parts[1] ? html`<${Page} name="StreamPage" key=${route.parts[1]} ...${props} name_=${route.parts[1]} />` : html`<${Page} name="Files" ...${props} />`; break;
    case 'analysis': body = html`<${Page} name="Analysis" ...${props} />`; break;
    case 'flows': body = html`<${Page} name="Flows" ...${props} />`; break;
    case 'config': body = html`<${Page} name="Config" ...${props} me=${me} />`; break;
    case 'tools': body = html`<${Page} name="Tools" ...${props} me=${me} hostname=${host} />`; break;
    default: body = html`<div class="msg error">No page <code>${page}</code>. <a href="#/dashboard">Dashboard</a></div>`;
  }
  return html`<div class="shell">
    <header class="top">
      <span class="brand"><img src="/ui/icon.svg" alt="" />wirecap</span>
      <span class="host" title="appliance hostname" data-test="hostname">${host}</span>
      <${RecIndicator} status=${status} />
      <span class="spacer"></span>
      ${statusError && html`<span class="tag" style="background:#fdecea;color:#8e1c14" title=${String(statusError.message)}>server unreachable</span>`}
      <span class="user">${me.user}</span>
      <button class="small" onClick=${onLogout}>Sign out</button>
    </header>
    <nav class="side" aria-label="main">
      ${PAGES.map(([p, label]) => html`<a href="#/${p}" class=${page === p ? 'on' : ''} aria-current=${page === p ? 'page' : undefined}>${label}</a>`)}
    </nav>
    <main>${body}</main>
  </div>`;
}

function App() {
  const [me, setMe] = useState(undefined); // undefined: asking; null: signed out
  const accept = (s) => {
    API.setCsrf(s.csrf);
    setMe(s);
  };
  useEffect(() => {
    API.onUnauthorized(() => setMe(null));
    API.session.get().then(accept, () => setMe(null));
  }, []);
  const logout = async () => {
    try { await API.session.logout(); } catch { /* the cookie is gone either way */ }
    API.setCsrf(null);
    setMe(null);
  };
  if (me === undefined) return html`<p class="boot">Loading wirecap…</p>`;
  if (me === null) return html`<${Login} onLogin=${accept} />`;
  return html`<${Shell} me=${me} onLogout=${logout} />`;
}

render(html`<${App} />`, root);
