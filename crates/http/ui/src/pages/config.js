// Config: the machine's network interfaces (driver, MAC, link, speed, counters), the
// choice of capture interface, and the inline forwarder (bump in the wire): its table,
// capture IP, capture mode and counters.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, ErrorMsg, usePoll, fmtBits, fmtBytes, fmtCount, fmtPps, fmtSpeed } from '../ui.js';
import { Alerts } from './config_alerts.js';

const MODES = ['ingress', 'egress', 'inline', 'both'];

/** The forwarding table, capture IP, mode and counters; the mode can be changed (admin). */
function Forwarding({ capturing }) {
  const [f, setF] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  usePoll(async () => {
    try { setF(await API.forward()); } catch (e) { setError(e); }
  }, 2000);
  const setMode = async (mode) => {
    setBusy(true); setError(null);
    try { setF(await API.setForward({ capture_mode: mode })); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  if (!f) return null;
  if (!f.enabled) {
    return html`<section class="panel" data-test="forwarding">
      <h2>Forwarding (bump in the wire)</h2>
      <p class="muted" data-test="forwarding-off">Forwarding is off. Start <code>wirecap serve --interface IF --inline 10.9.0.1/24
        --forward 10.9.0.2=10.9.0.3 --capture-mode inline</code>, or set <code>[forward]</code> in wirecap.toml: hosts send to the
        capture IP, the appliance relays between each pair and records the traffic.</p>
    </section>`;
  }
  const c = f.counters;
  const mac = Object.fromEntries(f.neighbours.map((n) => [n.ip, n.mac]));
  const drops = Object.entries(c.drops).filter(([, v]) => v > 0);
  return html`<section class="panel" data-test="forwarding">
    <h2>Forwarding (bump in the wire)</h2>
    <${ErrorMsg} error=${error} />
    <p>Interface <b class="mono">${f.interface}</b> (${f.mac}, MTU ${f.mtu}) · capture IP <b class="mono" data-test="capture-ip">${f.inline}</b>${' '}
      · capture mode <select data-test="capture-mode" value=${f.capture_mode} disabled=${busy || capturing}
        title=${capturing ? 'stop the capture to change the mode' : 'what a capture records'}
        onChange=${(e) => setMode(e.target.value)}>${MODES.map((m) => html`<option value=${m}>${m}</option>`)}</select></p>
    <div class="table-wrap"><table data-test="forward-pairs">
      <thead><tr><th>A</th><th>MAC</th><th></th><th>B</th><th>MAC</th></tr></thead>
      <tbody>${f.pairs.map((p) => {
        const [a, b] = p.split('=');
        return html`<tr key=${p}><td class="mono">${a}</td><td class="mono">${mac[a] || html`<span class="muted">resolving…</span>`}</td>
          <td>⇄</td><td class="mono">${b}</td><td class="mono">${mac[b] || html`<span class="muted">resolving…</span>`}</td></tr>`;
      })}</tbody>
    </table></div>
    <p data-test="forward-counters">A→B ${fmtCount(c.a_to_b.packets)} packets, ${fmtBytes(c.a_to_b.bytes)} ·${' '}
      B→A ${fmtCount(c.b_to_a.packets)} packets, ${fmtBytes(c.b_to_a.bytes)} · ${fmtPps(c.pps)}, ${fmtBits(c.bps)}${' '}
      · ARP answered ${fmtCount(c.arp.requests_answered)}, resolved ${fmtCount(c.arp.resolved)}, waiting ${fmtCount(c.arp.pending)}${' '}
      · dropped ${fmtCount(c.dropped)}${drops.length ? ` (${drops.map(([k, v]) => `${k.replaceAll('_', ' ')} ${fmtCount(v)}`).join(', ')})` : ''}</p>
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
      ${ifs && ifs.configured_interface && ifs.configured_interface !== current
        ? html`<p>After the next restart of <code>wirecap serve</code>: interface <b class="mono">${ifs.configured_interface}</b>${' '}
            <span class="muted">(from wirecap.toml; a --interface, --replay or --synthetic flag still wins)</span></p>`
        : html`<p class="muted" style="margin:0">“Capture here” saves the interface in wirecap.toml; the server captures from it
            after its next restart (capturing needs root or CAP_NET_RAW).</p>`}
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
          const isConf = ifs.configured_interface === i.name && !isCap;
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
            <td class="actions">${isCap ? html`<span class="tag live">capturing</span>`
              : isConf ? html`<span class="tag" title="written to wirecap.toml; applies when wirecap serve restarts">after restart</span>`
              : html`<button class="small" disabled=${busy} onClick=${() => choose(i.name)}>Capture here</button>`}</td>
          </tr>`;
        })}</tbody>
      </table></div>
    </section>
    <${Forwarding} capturing=${!!s.capture_active} />
    ${me && me.role === 'admin' && html`<${Alerts} />`}
  </div>`;
}
