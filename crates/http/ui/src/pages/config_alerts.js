// Alerts on the Config page (admins only: the server refuses a viewer even the read, as a
// webhook URL often carries a secret): where alerts go (webhook, syslog), the thresholds,
// a test button, the conditions in force and the last deliveries.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, ErrorMsg, usePoll } from '../ui.js';

const FIELDS = ['webhook', 'syslog', 'drops_per_minute', 'disk_percent', 'cert_days'];
const toForm = (c) => Object.fromEntries(FIELDS.map((k) => [k, c[k] === undefined || c[k] === null ? '' : String(c[k])]));
const fromForm = (f) => {
  const out = {};
  for (const k of ['webhook', 'syslog']) if (f[k].trim()) out[k] = f[k].trim();
  for (const k of ['drops_per_minute', 'disk_percent', 'cert_days']) if (f[k].trim()) out[k] = Number(f[k]);
  return out;
};

export function Alerts() {
  const [v, setV] = useState(null);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  usePoll(async () => {
    try {
      const r = await API.alerts.get();
      setV(r);
      setForm((f) => f || toForm(r.config));
    } catch (e) { setError(e); }
  }, 5000);
  const act = async (f) => {
    setBusy(true); setError(null); setMsg(null);
    try { setMsg(await f()); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const save = (e) => {
    e.preventDefault();
    act(async () => {
      const r = await API.alerts.set(fromForm(form));
      setV(r); setForm(toForm(r.config));
      return 'Alert settings saved to wirecap.toml and applied.';
    });
  };
  const test = () => act(async () => {
    const d = await API.alerts.test();
    setV(await API.alerts.get());
    if (!d.length) return 'No target is set: nothing sent.';
    return d.map((x) => `${x.target}: ${x.ok ? 'sent' : `failed (${x.error})`}`).join(' · ');
  });
  if (!v || !form) return html`<section class="panel" data-test="alerts-panel"><h2>Alerts</h2><${ErrorMsg} error=${error} /></section>`;
  const field = (k, label, attrs = {}) => html`<div class="field"><label for=${`al-${k}`}>${label}</label>
    <input id=${`al-${k}`} class="mono" value=${form[k]} onInput=${(e) => setForm({ ...form, [k]: e.target.value })} data-test=${`alerts-${k.split('_')[0]}`} ...${attrs} /></div>`;
  return html`<section class="panel" data-test="alerts-panel">
    <h2>Alerts</h2>
    <p class="muted">Sent once when a condition starts and once when it ends: capture drops over the threshold, the capture link down, a capture that stopped by itself,
      the disk or retention in trouble, the HTTPS certificate near its end. Kept in <code>[alerts]</code> of wirecap.toml.</p>
    <${ErrorMsg} error=${error} />
    ${msg && html`<div class="msg ok" data-test="alerts-msg">${msg}</div>`}
    <form class="row" onSubmit=${save} aria-label="alerts">
      ${field('webhook', 'Webhook (JSON POST)', { placeholder: 'https://hooks.example/wirecap', style: 'min-width:280px' })}
      ${field('syslog', 'Syslog (RFC 5424)', { placeholder: 'udp://10.0.0.5:514' })}
      ${field('drops_per_minute', 'Drops a minute above', { placeholder: '0', style: 'width:90px' })}
      ${field('disk_percent', 'Disk % above', { placeholder: '95', style: 'width:70px' })}
      ${field('cert_days', 'Certificate days within', { placeholder: '14', style: 'width:70px' })}
      <button type="submit" disabled=${busy} data-test="alerts-save">Save</button>
      <button type="button" disabled=${busy} onClick=${test} data-test="alerts-test">Send a test</button>
    </form>
    <h3>In force</h3>
    ${v.active.length === 0 ? html`<p class="muted" data-test="alerts-none">No alert.</p>`
      : html`<table class="kv" data-test="alerts-active"><tbody>${v.active.map((a) => html`<tr key=${a.condition}>
          <td><span class="tag">${a.condition}</span></td><td>${a.message}</td><td class="muted">since ${a.since}</td></tr>`)}</tbody></table>`}
    ${v.recent.length > 0 && html`<h3>Last deliveries</h3><table class="kv" data-test="alerts-recent"><tbody>
      ${v.recent.slice(0, 10).map((d, i) => html`<tr key=${i}><td class="muted">${d.at}</td><td>${d.state} ${d.condition}</td><td class="mono">${d.target}</td>
        <td>${d.ok ? 'sent' : html`<span class="error">failed after ${d.attempts}: ${d.error}</span>`}</td></tr>`)}</tbody></table>`}
  </section>`;
}
