// Software update panel of the Tools page: installed releases, upload of a release
// archive (`wirecap release pack`), activation with the server's restart and automatic
// rollback, and the update history. The checks themselves are the server's.
import * as API from '../api.js';
import { html, useLoad, ErrorMsg, Confirm } from '../ui.js';
import { useState } from 'preact/hooks';

const releases = () => API.api('/api/v1/releases');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function upload(file) {
  const r = await fetch('/api/v1/releases', {
    method: 'POST', body: file, credentials: 'same-origin', headers: API.rawHeaders('application/gzip'),
  });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) throw new API.ApiError(r.status, data);
  return { data, created: r.status === 201 };
}

/** Waits (bounded) for the server to come back and report how the restart into `version` ended. */
async function outcome(version, seconds) {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    await sleep(1000);
    let v;
    try { v = await releases(); } catch { continue; } // restarting: refused or 502
    if (v.pending) continue;
    const h = v.history || [];
    const from = h.map((e) => e.event === 'activated' && e.version === version).lastIndexOf(true);
    const end = from >= 0 && h.slice(from).reverse().find((e) => e.event === 'healthy' || e.event === 'rolled back');
    if (end) return end;
  }
  return { event: 'unknown', detail: `no answer within ${seconds} s; reload the page` };
}

export function SoftwareUpdate({ admin }) {
  const [v, error, , reload] = useLoad(releases, []);
  const [file, setFile] = useState(null);
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState(null);
  const [err, setErr] = useState(null);
  const [confirm, setConfirm] = useState(null);

  const doUpload = async () => {
    setBusy(true); setMsg(null); setErr(null);
    try {
      const { data, created } = await upload(file);
      setMsg(`${created ? 'Installed' : 'Already installed:'} release ${data.version}`);
    } catch (e) { setErr(e); }
    reload(); // a refused archive is in the history too
    setBusy(false);
  };
  const activate = async (version) => {
    setBusy(true); setMsg(null); setErr(null);
    try {
      const a = await API.api(`/api/v1/releases/${encodeURIComponent(version)}/activate`, { method: 'POST', body: {} });
      setConfirm(null);
      setMsg(`Restarting into ${version}${a.sealed ? ` (sealed capture ${a.sealed})` : ''} …`);
      const end = await outcome(version, (a.health_timeout_secs || 60) + 30);
      if (end.event === 'healthy') setMsg(`Running ${version}: ${end.detail}`);
      else setErr(new Error(`${end.event} ${version}: ${end.detail}`));
      reload();
    } catch (e) { setConfirm(null); setErr(e); }
    setBusy(false);
  };

  const list = (v && v.releases) || [];
  const history = ((v && v.history) || []).slice(-8).reverse();
  return html`<section class="panel" data-test="software-update">
    <h2>Software update</h2>
    <${ErrorMsg} error=${error} />
    ${v && html`<p>Running <span class="mono" data-test="running-version">wirecap ${v.running.version}</span>${' from '}<span class="mono">${v.running.path}</span>${v.pending && html` · <span class="tag">restart into ${v.pending.version} pending</span>`}</p>`}
    <table class="kv" data-test="releases"><thead><tr><th>Release</th><th>sha256</th><th>Signed</th><th>Installed</th><th></th></tr></thead>
      <tbody>
        ${list.length === 0 && html`<tr><td colspan="5" class="muted">No releases installed: upload one made with <code>wirecap release pack</code>.</td></tr>`}
        ${list.map((r) => html`<tr data-release=${r.version}>
          <td class="mono">${r.version} ${r.running && html`<span class="tag">running</span>`} ${r.selected && !r.running && html`<span class="tag">selected</span>`}</td>
          <td class="mono" title=${r.sha256}>${(r.sha256 || '').slice(0, 12)}…</td>
          <td>${r.signed_by ? 'yes' : 'no'}</td>
          <td>${r.installed}</td>
          <td>${admin && !r.running && html`<button class="small" disabled=${busy} onClick=${() => setConfirm(r.version)}>Activate</button>`}</td>
        </tr>`)}
      </tbody></table>
    ${admin && html`<div class="row">
      <input type="file" accept=".tar.gz,application/gzip" data-test="release-file" onChange=${(e) => setFile(e.target.files[0] || null)} />
      <button disabled=${!file || busy} data-test="release-upload" onClick=${doUpload}>Upload</button>
    </div>`}
    ${msg && html`<div class="msg ok" data-test="update-msg">${msg}</div>`}
    <${ErrorMsg} error=${err} />
    ${history.length > 0 && html`<h3>History</h3><ul class="muted" data-test="update-history">
      ${history.map((e) => html`<li><span class="mono">${e.at}</span> ${e.event} ${e.version} ${e.detail}</li>`)}</ul>`}
    ${confirm && html`<${Confirm} title=${`Restart into ${confirm}?`} confirm="Restart" busy=${busy}
        onConfirm=${() => activate(confirm)} onCancel=${() => setConfirm(null)}>
      The running capture is sealed and the server restarts into ${confirm}; if it does not come up
      healthy it is rolled back to the current release.<//>`}
  </section>`;
}
