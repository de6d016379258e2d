// Tools: this appliance, its hostname, users and system reports. Admins change them;
// viewers see them read-only (the server refuses their changes anyway, see access.rs)
// and may change their own password.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, Coming, ErrorMsg, Confirm, useLoad, usePoll, fmtBytes, fmtDuration } from '../ui.js';
import { SoftwareUpdate } from './tools_update.js';
import { ApiTokens } from './tools_tokens.js';

const LINKS = [
  ['/api/v1/openapi.json', 'OpenAPI document'],
  ['/metrics', 'Prometheus metrics'],
  ['/sysmaster/status', '/sysmaster/status'],
  ['/plain/list', '/plain/list'],
];
const HOST_RE = /^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Runs `f`, keeping busy/error/message state for a form. */
function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const run = async (f) => {
    setBusy(true); setError(null); setMsg(null);
    try { setMsg(await f()); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return { busy, error, msg, run };
}

function Hostname({ admin, hostname, refresh }) {
  const [name, setName] = useState('');
  const a = useAction();
  const ok = HOST_RE.test(name);
  const save = (e) => {
    e.preventDefault();
    a.run(async () => {
      const r = await API.setHostname(name);
      await refresh();
      setName('');
      return `Hostname is now ${r.hostname} (OS: ${r.os}).`;
    });
  };
  return html`<section class="panel" data-test="hostname-panel">
    <h2>Hostname</h2>
    <p>Now: <b class="mono" data-test="hostname-now">${hostname}</b></p>
    ${admin ? html`<form class="row" onSubmit=${save}>
        <div class="field"><label for="newhost">New hostname</label>
          <input id="newhost" class=${`mono ${name && !ok ? 'invalid' : ''}`} value=${name} onInput=${(e) => setName(e.target.value)}
            placeholder="probe-fra-1" data-test="hostname-input" /></div>
        <button type="submit" disabled=${a.busy || !ok} data-test="hostname-save">Save</button>
        <span class="muted" style="flex-basis:100%">Letters, digits and hyphens, dot-separated (RFC 1123). Kept in <code>wirecap.toml</code>; applied to the OS only with <code>apply_hostname_to_os = true</code>.</span>
      </form>`
      : html`<p class="muted">Only an admin changes the hostname.</p>`}
    <${ErrorMsg} error=${a.error} />
    ${a.msg && html`<div class="msg ok" data-test="hostname-msg">${a.msg}</div>`}
  </section>`;
}

function Users({ me }) {
  const admin = me.role === 'admin';
  const [users, error, , reload] = useLoad(() => API.users.list(), []);
  const [form, setForm] = useState({ name: '', password: '', role: 'viewer' });
  const [pw, setPw] = useState({ name: me.user, password: '', current: '' });
  const [removing, setRemoving] = useState(null);
  const a = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const add = (e) => {
    e.preventDefault();
    a.run(async () => {
      await API.users.add(form);
      setForm({ name: '', password: '', role: 'viewer' });
      reload();
      return `Added ${form.name} (${form.role}).`;
    });
  };
  const passwd = (e) => {
    e.preventDefault();
    a.run(async () => {
      await API.users.change(pw.name, admin ? { password: pw.password } : { password: pw.password, current_password: pw.current });
      setPw({ ...pw, password: '', current: '' });
      return `Password of ${pw.name} changed; their other sessions have ended.`;
    });
  };
  const remove = () => a.run(async () => {
    await API.users.remove(removing);
    const n = removing;
    setRemoving(null);
    reload();
    return `Removed ${n}.`;
  });
  return html`<section class="panel" data-test="users-panel">
    <h2>Users</h2>
    <${ErrorMsg} error=${error || a.error} />
    ${a.msg && html`<div class="msg ok" data-test="users-msg">${a.msg}</div>`}
    <table class="kv" data-test="users"><tbody>
      ${(users || []).map((u) => html`<tr key=${u.name}><td class="mono">${u.name}</td><td>${u.role}</td>
        <td>${admin && u.name !== me.user && html`<button class="small danger" onClick=${() => setRemoving(u.name)} data-test=${`remove-${u.name}`}>Remove</button>`}</td></tr>`)}
    </tbody></table>
    ${admin && html`<form class="row" onSubmit=${add} aria-label="add user">
      <div class="field"><label for="uname">Name</label><input id="uname" value=${form.name} onInput=${set('name')} data-test="user-name" /></div>
      <div class="field"><label for="upw">Password</label><input id="upw" type="password" autocomplete="new-password" value=${form.password} onInput=${set('password')} data-test="user-password" /></div>
      <div class="field"><label for="urole">Role</label><select id="urole" value=${form.role} onChange=${set('role')} data-test="user-role">
        <option value="viewer">viewer (read and download)</option><option value="admin">admin (everything)</option></select></div>
      <button type="submit" disabled=${a.busy || !form.name || form.password.length < 8} data-test="user-add">Add user</button>
    </form>`}
    <form class="row" onSubmit=${passwd} aria-label="change password">
      ${admin
        ? html`<div class="field"><label for="pwuser">User</label><select id="pwuser" value=${pw.name} onChange=${(e) => setPw({ ...pw, name: e.target.value })}>
            ${(users || []).map((u) => html`<option value=${u.name}>${u.name}</option>`)}</select></div>`
        : html`<div class="field"><label>User</label><span class="mono">${me.user}</span></div>
          <div class="field"><label for="curpw">Current password</label><input id="curpw" type="password" autocomplete="current-password"
            value=${pw.current} onInput=${(e) => setPw({ ...pw, current: e.target.value })} data-test="current-password" /></div>`}
      <div class="field"><label for="newpw">New password</label><input id="newpw" type="password" autocomplete="new-password"
        value=${pw.password} onInput=${(e) => setPw({ ...pw, password: e.target.value })} data-test="new-password" /></div>
      <button type="submit" disabled=${a.busy || pw.password.length < 8} data-test="change-password">Change password</button>
      <span class="muted" style="flex-basis:100%">At least 8 characters. ${admin ? 'The last admin cannot be removed.' : 'You may change your own password.'}</span>
    </form>
    ${removing && html`<${Confirm} title="Remove user" confirm="Remove" busy=${a.busy} onConfirm=${remove} onCancel=${() => setRemoving(null)}>
      Remove <b class="mono">${removing}</b>? Their sessions end at once.<//>`}
  </section>`;
}

function Report({ admin }) {
  const [list, , , reload] = useLoad(() => API.reports.list(), []);
  const [recipient, setRecipient] = useState('');
  const [job, setJob] = useState(null);
  const a = useAction();
  usePoll(async () => {
    if (!job || job.state !== 'running') return;
    const j = await API.reports.job(job.id);
    setJob(j);
    if (j.state !== 'running') reload();
  }, 500, [job && job.id, job && job.state]);
  const start = (e) => {
    e.preventDefault();
    a.run(async () => { setJob(await API.reports.start(recipient.trim() || undefined)); return null; });
  };
  const pct = job ? Math.round((100 * job.steps_done) / job.steps_total) : 0;
  return html`<section class="panel" data-test="report-panel">
    <h2>System report</h2>
    <p class="muted">An archive of the logs, status and counters, configuration (secrets removed), user names and roles, streams, interfaces and system facts, with a <code>filelist</code> of sha256 sums. Give an <a href="https://age-encryption.org" target="_blank">age</a> public key to encrypt it.</p>
    ${admin && html`<form class="row" onSubmit=${start}>
      <div class="field" style="flex:1; max-width:520px"><label for="recip">Encrypt to (optional)</label>
        <input id="recip" class="mono" placeholder="age1…" value=${recipient} onInput=${(e) => setRecipient(e.target.value)} data-test="report-recipient" /></div>
      <button type="submit" disabled=${a.busy || (job && job.state === 'running')} data-test="report-start">Generate report</button>
    </form>`}
    <${ErrorMsg} error=${a.error || (job && job.error)} />
    ${job && html`<div data-test="report-job">
      <progress max="100" value=${pct}></progress>
      <span class="muted"> ${job.steps_done} / ${job.steps_total} steps${job.state === 'running' ? ` · ${job.step}` : ''}</span>
      ${job.state === 'done' && html` · <a href=${job.download} download data-test="report-download">${job.file}</a>`}
    </div>`}
    <table class="kv" data-test="reports"><tbody>
      ${(list || []).map((r) => html`<tr key=${r.file}><td><a class="mono" href=${r.download} download>${r.file}</a></td>
        <td>${fmtBytes(r.bytes)}</td><td class="muted">${r.modified}</td></tr>`)}
    </tbody></table>
    ${list && list.length === 0 && html`<p class="muted">No reports yet.</p>`}
  </section>`;
}

export function Tools({ me, hostname, refresh }) {
  const [sys] = useLoad(() => API.system(), []);
  const admin = me.role === 'admin';
  return html`<div>
    <h1>Tools</h1>
    <section class="panel">
      <h2>This appliance</h2>
      <table class="kv"><tbody>
        <tr><td>Hostname</td><td class="mono">${hostname}</td></tr>
        <tr><td>Software</td><td class="mono" data-test="version">${sys ? `wirecap ${sys.version}` : '…'}</td></tr>
        ${sys && sys.uptime_s !== undefined && html`<tr><td>Server up for</td><td>${fmtDuration(sys.uptime_s)}</td></tr>`}
        <tr><td>Signed in as</td><td class="mono" data-test="whoami">${me.user}${me.role ? ` (${me.role})` : ''}</td></tr>
        <tr><td>HTTP API</td><td>${LINKS.map(([href, label], i) => html`${i ? ' · ' : ''}<a href=${href} target="_blank">${label}</a>`)}</td></tr>
      </tbody></table>
    </section>
    <${Hostname} admin=${admin} hostname=${hostname} refresh=${refresh} />
    <${Report} admin=${admin} />
    <${Users} me=${me} />
    ${admin && html`<${ApiTokens} />`}
    <${SoftwareUpdate} admin=${admin} />
  </div>`;
}
