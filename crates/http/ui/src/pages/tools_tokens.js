// API tokens (admins only: the server refuses a viewer even the list): make one for a
// script, see its secret once, see when each was last used, revoke one.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, ErrorMsg, Confirm, useLoad } from '../ui.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function ApiTokens() {
  const [list, error, , reload] = useLoad(() => API.tokens.list(), []);
  const [form, setForm] = useState({ name: '', role: 'viewer' });
  const [made, setMade] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const [msg, setMsg] = useState(null);
  const act = async (f) => {
    setBusy(true); setErr(null); setMsg(null);
    try { await f(); } catch (e) { setErr(e); } finally { setBusy(false); }
  };
  const create = (e) => {
    e.preventDefault();
    act(async () => {
      setMade(await API.tokens.create(form));
      setForm({ name: '', role: 'viewer' });
      reload();
    });
  };
  const revoke = () => act(async () => {
    await API.tokens.revoke(revoking);
    setMsg(`Revoked ${revoking}: it is refused from now on.`);
    if (made && made.name === revoking) setMade(null);
    setRevoking(null);
    reload();
  });
  return html`<section class="panel" data-test="tokens-panel">
    <h2>API tokens</h2>
    <p class="muted">For scripts, instead of a person's password: send <code>Authorization: Bearer TOKEN</code>${' '}
      (e.g. <code>curl -H "Authorization: Bearer $TOKEN" …/sysmaster/status</code>). A token acts with its role; it is stored hashed, so its secret is shown once.</p>
    <${ErrorMsg} error=${error || err} />
    ${msg && html`<div class="msg ok" data-test="tokens-msg">${msg}</div>`}
    ${made && html`<div class="msg ok" data-test="token-made">Token <b class="mono">${made.name}</b> (${made.role}) made. Copy it now, it is not shown again:
      <div><code class="mono" data-test="token-secret" style="user-select:all; word-break:break-all">${made.token}</code></div></div>`}
    <table class="kv" data-test="tokens"><thead><tr><th>Name</th><th>Role</th><th>Made</th><th>Last used</th><th></th></tr></thead><tbody>
      ${(list || []).map((t) => html`<tr key=${t.name} data-token=${t.name}><td class="mono">${t.name}</td><td>${t.role}</td>
        <td class="muted">${t.created} by ${t.created_by}</td>
        <td data-test="token-last-used">${t.last_used || html`<span class="muted">never</span>`}</td>
        <td><button class="small danger" onClick=${() => setRevoking(t.name)} data-test=${`revoke-${t.name}`}>Revoke</button></td></tr>`)}
    </tbody></table>
    ${list && list.length === 0 && html`<p class="muted" data-test="no-tokens">No tokens yet.</p>`}
    <form class="row" onSubmit=${create} aria-label="make token">
      <div class="field"><label for="tname">Name</label><input id="tname" class=${`mono ${form.name && !NAME_RE.test(form.name) ? 'invalid' : ''}`}
        value=${form.name} placeholder="nightly-export" onInput=${(e) => setForm({ ...form, name: e.target.value })} data-test="token-name" /></div>
      <div class="field"><label for="trole">Role</label><select id="trole" value=${form.role} onChange=${(e) => setForm({ ...form, role: e.target.value })} data-test="token-role">
        <option value="viewer">viewer (read and download)</option><option value="admin">admin (everything)</option></select></div>
      <button type="submit" disabled=${busy || !NAME_RE.test(form.name)} data-test="token-create">Make token</button>
    </form>
    ${revoking && html`<${Confirm} title="Revoke token" confirm="Revoke" busy=${busy} onConfirm=${revoke} onCancel=${() => setRevoking(null)}>
      Revoke <b class="mono">${revoking}</b>? Scripts using it are refused from their next request.<//>`}
  </section>`;
}
