// Config: the machine's network interfaces (driver, MAC, link, speed, counters), the
// capture interface (switched live), the capture settings (filter, snaplen, threads, ring)
// and the inline forwarder (bump in the wire): on/off, capture IP, pairs, capture mode,
// its table and counters. Every change applies at once and is kept in wirecap.toml.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, ErrorMsg, usePoll, fmtBits, fmtBytes, fmtCount, fmtPps, fmtSpeed } from '../ui.js';
import { Alerts } from './config_alerts.js';

const MODES = ['ingress', 'egress', 'inline', 'both'];

/** A form's fields from what the server answers (forwarding on or off). */
const forwardForm = (f) => ({
  enabled: !!f.enabled,
  inline: f.inline || '',
  pairs: (f.pairs || []).map((p) => { const [a, b] = p.split('='); return { a, b: b || '' }; }),
  mode: f.capture_mode || 'inline',
});

/** Forwarding: switched on and off, capture IP, pairs and mode edited and applied at once (admin). */
function Forwarding({ capturing }) {
  const [f, setF] = useState(null);
  const [form, setForm] = useState(null);
  const [dirty, setDirty] = useState(false);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  usePoll(async () => {
    try {
      const r = await API.forward();
      setF(r);
      if (!dirty) setForm(forwardForm(r));
    } catch (e) { setError(e); }
  }, 2000, [dirty]);
  if (!f || !form) return null;
  const edit = (patch) => { setForm({ ...form, ...patch }); setDirty(true); };
  const setPair = (i, patch) => edit({ pairs: form.pairs.map((p, j) => (j === i ? { ...p, ...patch } : p)) });
  const apply = async (enabled) => {
    setBusy(true); setError(null); setMsg(null);
    try {
      const body = {
        enabled,
        inline: form.inline.trim(),
        pairs: form.pairs.filter((p) => p.a.trim() || p.b.trim()).map((p) => `${p.a.trim()}=${p.b.trim()}`),
        capture_mode: form.mode,
      };
      const r = await API.setForward(body);
      setF(r); setForm(forwardForm(r)); setDirty(false);
      setMsg(`${r.enabled ? 'Forwarding is on' : 'Forwarding is off'}${r.capture_restarted ? `; the running capture continues as ${r.capture_restarted}` : ''}.`);
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const c = f.counters;
  const mac = Object.fromEntries((f.neighbours || []).map((n) => [n.ip, n.mac]));
  const drops = c ? Object.entries(c.drops).filter(([, v]) => v > 0) : [];
  return html`<section class="panel" data-test="forwarding">
    <h2>Forwarding (bump in the wire)</h2>
    <${ErrorMsg} error=${error} />
    ${msg && html`<div class="msg ok" data-test="forward-msg">${msg}</div>`}
    <p data-test=${f.enabled ? 'forwarding-on' : 'forwarding-off'}>${f.enabled
      ? html`<span class="tag live">on</span> on interface <b class="mono">${f.interface}</b> (${f.mac}, MTU ${f.mtu}) · capture IP <b class="mono" data-test="capture-ip">${f.inline}</b> · capture mode <b>${f.capture_mode}</b>`
      : html`<span class="tag">off</span> <span class="muted">Hosts send to the capture IP on the capture interface; the appliance relays between
          each pair and records the traffic (also <code>wirecap serve --inline 10.9.0.1/24 --forward 10.9.0.2=10.9.0.3</code> or <code>[forward]</code> in wirecap.toml).</span>`}</p>
    <div class="row">
      <div class="field"><label for="fwd-inline">Capture IP / prefix</label>
        <input id="fwd-inline" class="mono" placeholder="10.9.0.1/24" value=${form.inline} size="22"
          onInput=${(e) => edit({ inline: e.target.value })} data-test="forward-inline" /></div>
      <div class="field"><label for="fwd-mode">Capture mode</label>
        <select id="fwd-mode" value=${form.mode} disabled=${f.enabled && capturing}
          title=${f.enabled && capturing ? 'stop the capture to change the mode' : 'what a capture records'}
          onChange=${(e) => edit({ mode: e.target.value })} data-test="capture-mode">${MODES.map((m) => html`<option value=${m}>${m}</option>`)}</select></div>
    </div>
    <div class="table-wrap"><table data-test="forward-pairs">
      <thead><tr><th>A</th><th>MAC</th><th></th><th>B</th><th>MAC</th><th></th></tr></thead>
      <tbody>${form.pairs.map((p, i) => html`<tr key=${i} data-test="forward-pair">
        <td><input class="mono" value=${p.a} placeholder="10.9.0.2" size="18" aria-label=${`pair ${i + 1} A`}
          onInput=${(e) => setPair(i, { a: e.target.value })} data-test=${`pair-a-${i}`} /></td>
        <td class="mono">${f.enabled ? mac[p.a] || html`<span class="muted">resolving…</span>` : ''}</td>
        <td>⇄</td>
        <td><input class="mono" value=${p.b} placeholder="10.9.0.3 or 10.9.0.3@vlan100" size="22" aria-label=${`pair ${i + 1} B`}
          onInput=${(e) => setPair(i, { b: e.target.value })} data-test=${`pair-b-${i}`} /></td>
        <td class="mono">${f.enabled ? mac[p.b.split('@')[0]] || html`<span class="muted">resolving…</span>` : ''}</td>
        <td><button class="small" onClick=${() => edit({ pairs: form.pairs.filter((_, j) => j !== i) })} title="remove this pair" data-test=${`pair-remove-${i}`}>✕</button></td>
      </tr>`)}</tbody>
    </table></div>
    <div class="row" style="margin-top:10px">
      <button class="small" onClick=${() => edit({ pairs: [...form.pairs, { a: '', b: '' }] })} data-test="pair-add">+ Add pair</button>
      ${f.enabled
        ? html`<button class="primary" disabled=${busy || !dirty} onClick=${() => apply(true)} data-test="forward-apply">Apply</button>
            <button class="danger" disabled=${busy} onClick=${() => apply(false)} data-test="forward-off">Turn forwarding off</button>`
        : html`<button class="primary" disabled=${busy || !form.inline.trim()} onClick=${() => apply(true)} data-test="forward-on">Turn forwarding on</button>
            <button disabled=${busy || !dirty} onClick=${() => apply(false)} data-test="forward-save">Save (stay off)</button>`}
      <span class="muted">Applied at once; kept in wirecap.toml.${capturing ? ' Turning forwarding on or off seals the running capture and continues it in a new stream.' : ''}</span>
    </div>
    ${f.enabled && c && html`<p data-test="forward-counters">A→B ${fmtCount(c.a_to_b.packets)} packets, ${fmtBytes(c.a_to_b.bytes)} ·${' '}
      B→A ${fmtCount(c.b_to_a.packets)} packets, ${fmtBytes(c.b_to_a.bytes)} · ${fmtPps(c.pps)}, ${fmtBits(c.bps)}${' '}
      · ARP answered ${fmtCount(c.arp.requests_answered)}, resolved ${fmtCount(c.arp.resolved)}, waiting ${fmtCount(c.arp.pending)}${' '}
      · dropped ${fmtCount(c.dropped)}${drops.length ? ` (${drops.map(([k, v]) => `${k.replaceAll('_', ' ')} ${fmtCount(v)}`).join(', ')})` : ''}</p>`}
  </section>`;
}

const SETTING_FIELDS = [
  { key: 'bpf', label: 'Capture filter (tcpdump syntax)', placeholder: 'not port 22', size: 34, text: true },
  { key: 'snaplen', label: 'Snaplen (bytes kept)', placeholder: '262144', size: 8 },
  { key: 'threads', label: 'Threads (fanout)', placeholder: '1', size: 4 },
  { key: 'fanout', label: 'Fanout', select: ['hash', 'cpu'] },
  { key: 'blocks', label: 'Ring blocks / thread', placeholder: '32', size: 6 },
  { key: 'block_kib', label: 'Block size (KiB)', placeholder: '1024', size: 6 },
];

/** The capture settings: what is in force, and a form that replaces them at once (admin). */
function CaptureSettings() {
  const [st, setSt] = useState(null);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  usePoll(async () => {
    try {
      const r = await API.captureSettings();
      setSt(r);
      setForm((old) => old || Object.fromEntries(SETTING_FIELDS.map((f) => [f.key, r.options[f.key] ?? ''])));
    } catch (e) { setError(e); }
  }, 3000);
  if (!st || !form) return null;
  const save = async (e) => {
    e.preventDefault();
    setBusy(true); setError(null); setMsg(null);
    try {
      const body = {};
      for (const f of SETTING_FIELDS) {
        const v = String(form[f.key] ?? '').trim();
        // A number that is not one goes as typed: the server names the field.
        if (v) body[f.key] = f.text || f.select || !/^\d+$/.test(v) ? v : Number(v);
      }
      const r = await API.setCaptureSettings(body);
      setSt(r.settings); setMsg(r.message);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const bad = (k) => error && error.body && error.body.field === k;
  return html`<section class="panel" data-test="capture-settings">
    <h2>Capture settings</h2>
    <p data-test="settings-in-force">In force: ${st.bpf ? html`filter <code data-test="in-force-bpf">${st.bpf}</code> (${st.filter_instructions} BPF instructions in the socket)` : 'no filter'}${' '}
      · snaplen <b data-test="in-force-snaplen">${st.snaplen}</b> · ${st.threads} thread${st.threads > 1 ? 's' : ''} (fanout ${st.fanout})
      · ring ${st.blocks} × ${st.block_kib} KiB${st.threads > 1 ? ` × ${st.threads}` : ''} = ${fmtBytes(st.ring_bytes)}
      ${!st.applies && html`<span class="muted" data-test="settings-not-applied"> — not used now: they apply to captures of an interface.</span>`}</p>
    <form class="row" onSubmit=${save}>
      ${SETTING_FIELDS.map((f) => html`<div class="field"><label for=${`cs-${f.key}`}>${f.label}</label>
        ${f.select
          ? html`<select id=${`cs-${f.key}`} value=${form[f.key] || 'hash'} onChange=${(e) => setForm({ ...form, [f.key]: e.target.value })} data-test=${`setting-${f.key}`}>
              ${f.select.map((o) => html`<option value=${o}>${o}</option>`)}</select>`
          : html`<input id=${`cs-${f.key}`} class=${`mono ${bad(f.key) ? 'invalid' : ''}`} size=${f.size} placeholder=${f.placeholder}
              value=${form[f.key]} onInput=${(e) => setForm({ ...form, [f.key]: e.target.value })} data-test=${`setting-${f.key}`} />`}
        ${bad(f.key) && html`<div class="inline-error" role="alert" data-test="setting-error">${error.message}</div>`}</div>`)}
      <button class="primary" type="submit" disabled=${busy} data-test="settings-save">Apply</button>
    </form>
    ${error && !(error.body && error.body.field) && html`<${ErrorMsg} error=${error} />`}
    ${msg && html`<div class="msg ok" data-test="settings-msg">${msg}</div>`}
    <p class="muted" style="margin:6px 0 0">The filter runs in the kernel on the capture socket: packets it rejects are never copied.
      A snaplen below 262144 keeps that many bytes of each packet (and its original length). Applying seals a running
      interface capture and continues it in a new stream. A <code>--bpf</code>, <code>--snaplen</code>, … flag of <code>wirecap serve</code> wins again at the next restart.</p>
  </section>`;
}

export function Config({ status, refresh, me }) {
  const [ifs, setIfs] = useState(null);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  usePoll(async () => {
    try { setIfs(await API.interfaces()); setError(null); } catch (e) { setError(e); }
  }, 5000);
  const list = ifs ? (Array.isArray(ifs) ? ifs : ifs.interfaces) : null;
  const current = ifs && !Array.isArray(ifs) ? ifs.capture_interface : null;
  const choose = async (name) => {
    setBusy(true); setMsg(null); setError(null);
    try {
      const r = await API.setCaptureInterface(name);
      setMsg(r && r.message ? r.message : `Capture interface set to ${name}.`);
      setIfs(await API.interfaces());
      await refresh();
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const s = status || {};
  return html`<div>
    <h1>Config</h1>
    <${ErrorMsg} error=${error} />
    ${msg && html`<div class="msg ok">${msg}</div>`}
    <section class="panel">
      <h2>Capture source</h2>
      <p>${ifs && ifs.source ? html`<span class="mono">${ifs.source}</span>` : s.source ? html`<span class="mono">${s.source}</span>` : html`<span class="muted">…</span>`}
        ${current && html` · capture interface <b class="mono">${current}</b>`}</p>
      <p class="muted" style="margin:0">“Capture here” captures from that interface at once (a running capture is sealed and
        continues on it in a new stream) and keeps it in wirecap.toml. Capturing needs root or CAP_NET_RAW.</p>
    </section>
    <section class="panel">
      <h2>Network interfaces</h2>
      <div class="table-wrap"><table data-test="interfaces">
        <thead><tr><th>Interface</th><th>MAC</th><th>Link</th><th class="num">MTU</th>
          <th class="num">RX packets</th><th class="num">RX bytes</th><th class="num">RX dropped / errors</th>
          <th class="num">TX packets</th><th class="num">TX bytes</th><th></th></tr></thead>
        <tbody>${list && list.map((i) => {
          const up = i.link === 'up' || i.link_up === true || i.operstate === 'up';
          const isCap = i.capture || i.name === current;
          return html`<tr key=${i.name} data-if=${i.name}>
            <td><b class="mono">${i.name}</b><div class="muted" style="font-size:12px">${i.driver ? `driver ${i.driver}` : 'virtual'}</div></td>
            <td class="mono">${i.mac || '–'}</td>
            <td style="white-space:nowrap"><span class="dot ${up ? 'up' : i.operstate === 'unknown' ? 'unknown' : 'down'}"></span>${i.operstate || (up ? 'up' : 'down')}
              <div class="muted" style="font-size:12px">${fmtSpeed(i.speed_mbps)}</div></td>
            <td class="num">${i.mtu ?? '–'}</td>
            <td class="num">${fmtCount(i.rx_packets)}</td>
            <td class="num">${fmtBytes(i.rx_bytes)}</td>
            <td class="num">${fmtCount(i.rx_dropped)} / ${fmtCount(i.rx_errors)}</td>
            <td class="num">${fmtCount(i.tx_packets)}</td>
            <td class="num">${fmtBytes(i.tx_bytes)}</td>
            <td class="actions">${isCap ? html`<span class="tag live" data-test="capture-interface">capture interface</span>`
              : html`<button class="small" disabled=${busy} onClick=${() => choose(i.name)}>Capture here</button>`}</td>
          </tr>`;
        })}</tbody>
      </table></div>
    </section>
    <${CaptureSettings} />
    <${Forwarding} capturing=${!!s.capture_active} />
    ${me && me.role === 'admin' && html`<${Alerts} />`}
  </div>`;
}
