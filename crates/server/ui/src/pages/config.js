// Config: the machine's network interfaces (driver, MAC, link, speed, counters) and the
// choice of capture interface.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, Coming, ErrorMsg, usePoll, fmtBytes, fmtCount, fmtSpeed } from '../ui.js';

export function Config({ status, refresh }) {
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
    <${Coming} title="Forwarding table and capture mode" issue="7">The bump-in-the-wire forwarder: routes between two
      peers and the capture mode (ingress, egress, inline or both), as on the appliance's Config page.<//>
  </div>`;
}
