// Dashboard: capture rate charts (last minutes / last hour), drops, link, disk and
// retention horizon, and every status counter.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { TimeChart } from '../chart.js';
import {
  html, Stat, ErrorMsg, usePoll, fmtBits, fmtPps, fmtBytes, fmtCount, fmtSpeed, fmtTime, ago,
  fmtDuration,
} from '../ui.js';

const RANGES = [
  ['5 min', 300],
  ['15 min', 900],
  ['1 hour', 3600],
];

// Every line of /sysmaster/status, in its order, then what the JSON status adds.
const COUNTERS = ['uptime', 'packets_received', 'packets_dropped', 'packets_errors', 'packets_captured', 'bytes_captured',
  'bytes_pending', 'bytes_cache', 'bytes_disk', 'capture_link', 'capture_link_uptime', 'capture_link_speed', 'capture_bytes',
  'capture_packets', 'capture_bps', 'capture_pps', 'capture_name', 'capture_active', 'source'];
const show = (v) => (typeof v === 'number' ? fmtCount(v) : String(v ?? 'none'));

/** The status history as uPlot columns, null where the server has no sample. */
function columns(h) {
  if (!h || !h.t) return [[], [], [], []];
  const step = h.interval_s || 1;
  return [h.t, h.bps, h.pps, (h.drops || []).map((d) => (d === null ? null : d / step))];
}

export function Dashboard({ status }) {
  const [range, setRange] = useState(300);
  const [hist, setHist] = useState(null);
  const [histError, setHistError] = useState(null);
  const [sys, setSys] = useState(null);

  usePoll(async () => {
    try {
      setHist(await API.history(range));
      setHistError(null);
    } catch (e) {
      setHistError(e);
    }
  }, range > 900 ? 10000 : 2000, [range]);
  usePoll(async () => setSys(await API.system()), 15000);

  const s = status || {};
  const data = columns(hist);
  const drops = (s.packets_dropped || 0) + (s.packets_errors || 0);
  const linkUp = s.capture_link === 'up' || s.link_up === true;
  const disk = sys && sys.disk;
  const usedPct = disk && disk.total_bytes ? (100 * (disk.total_bytes - disk.free_bytes)) / disk.total_bytes : null;

  return html`<div>
    <h1>Dashboard</h1>
    ${s.disk_full && html`<section class="panel" role="alert" data-test="disk-full"
      style="border-color:var(--bad);color:var(--bad)">
      <b>Disk full.</b> The capture${s.capture_name ? html` into <span class="mono">${s.capture_name}</span>` : ''} drops
      every packet it cannot write (${fmtCount(s.drops && s.drops.write)} so far). Free space, or lower the retention budget.
    </section>`}
    <div class="grid" data-test="stats">
      <${Stat} k="Capture" cls=${s.capture_active ? 'ok' : ''}
        v=${s.capture_active ? 'recording' : 'idle'}
        s=${s.capture_active ? html`<span class="mono">${s.capture_name}</span>` : 'no capture running'} />
      <${Stat} k="Capture rate" v=${fmtBits(s.capture_bps)} s=${fmtPps(s.capture_pps)} />
      <${Stat} k="Captured" v=${fmtBytes(s.capture_bytes)} s=${`${fmtCount(s.capture_packets)} packets`} />
      <${Stat} k="Drops" cls=${drops ? 'bad' : ''} v=${fmtCount(s.packets_dropped)}
        s=${`${fmtCount(s.packets_errors)} errors · of ${fmtCount(s.packets_received)} received`} />
      <${Stat} k="Link" cls=${linkUp ? 'ok' : 'bad'}
        v=${html`<span class="dot ${linkUp ? 'up' : 'down'}"></span>${linkUp ? 'up' : 'down'}`}
        s=${s.source && !s.source.startsWith('interface') ? `${s.source.split(' ')[0]} source: no wire`
          : `${fmtSpeed(s.capture_link_speed)} · for ${fmtDuration(s.capture_link_uptime_s)}`} />
      <${Stat} k="Disk free" v=${disk ? fmtBytes(disk.free_bytes) : '–'}
        s=${disk ? html`<div class=${`bar ${usedPct > 85 ? 'high' : ''}`}><div style=${`width:${usedPct.toFixed(1)}%`}></div></div>
          ${fmtBytes(disk.total_bytes - disk.free_bytes)} used of ${fmtBytes(disk.total_bytes)} · packets ${fmtBytes(s.bytes_disk ?? (sys && sys.store_bytes))}` : ''} />
    </div>

    <section class="panel" data-test="retention">
      <h2>Retention</h2>
      ${sys && sys.oldest_packet_ns
        ? html`<p>The oldest packet on disk is from <b>${fmtTime(sys.oldest_packet_ns, false)} UTC</b>${' '}
            <span class="muted">(${ago(sys.oldest_packet_ns)})</span>, in${' '}
            <a href=${`#/files/${encodeURIComponent(sys.oldest_stream)}`} class="mono">${sys.oldest_stream}</a>.${' '}
            ${fmtCount(sys.streams)} streams hold ${fmtBytes(sys.store_bytes)}.</p>`
        : html`<p class="muted">${sys ? 'No packets on disk yet.' : 'Loading…'}</p>`}
      ${sys && sys.retention && html`<p class="muted">${sys.retention}</p>`}
    </section>

    ${s.archive && html`<${ArchivePanel} a=${s.archive} />`}

    <section class="panel">
      <div class="chart-head">
        <h2>Capture throughput</h2><span class="spacer"></span>
        <div class="tabs" role="tablist">
          ${RANGES.map(([label, sec]) => html`<button type="button" role="tab" class=${range === sec ? 'on' : ''}
            aria-selected=${range === sec} onClick=${() => setRange(sec)}>last ${label}</button>`)}
        </div>
      </div>
      <${ErrorMsg} error=${histError} />
      ${hist && hist.interval_s && html`<p class="muted" style="margin:0 0 6px">one point every ${fmtDuration(hist.interval_s)}</p>`}
      <div class="grid2">
        <div data-test="chart-bps"><${TimeChart} data=${[data[0], data[1]]} yFormat=${fmtBits}
          series=${[{ label: 'bits/s', color: '#1677c9', fill: 'rgba(22,119,201,.08)', format: fmtBits }]} /></div>
        <div data-test="chart-pps"><${TimeChart} data=${[data[0], data[2], data[3]]} yFormat=${fmtPps}
          series=${[{ label: 'packets/s', color: '#7b3fc4', fill: 'rgba(123,63,196,.08)', format: fmtPps },
            { label: 'drops/s', color: '#c62828', format: fmtPps }]} /></div>
      </div>
    </section>

    <section class="panel">
      <h2>Status counters <span class="muted" style="font-weight:400">(as <a href="/sysmaster/status" target="_blank">/sysmaster/status</a> prints them)</span></h2>
      <table class="kv" data-test="status-counters"><tbody>
        ${COUNTERS.map((k) => html`<tr><td class="mono">${k}</td><td class="mono">${show(s[k])}</td></tr>`)}
        ${s.drops && html`<tr><td class="mono">drops by cause</td><td class="mono">${Object.entries(s.drops).map(([k, v]) => `${k} ${fmtCount(v)}`).join(' · ')}</td></tr>`}
        ${s.last_error && html`<tr><td class="mono">last_error</td><td class="mono" style="color:var(--bad)">${s.last_error}</td></tr>`}
      </tbody></table>
    </section>
  </div>`;
}

/** The archive tier: where, how far behind, how fast, and the last error in words. */
function ArchivePanel({ a }) {
  const bad = a.state === 'error';
  return html`<section class="panel" data-test="archive">
    <h2>Archive <span class="muted" style="font-weight:400">${a.url} · probe <span class="mono">${a.probe}</span> · ${a.mode}</span></h2>
    ${a.warning && html`<p role="alert" style="color:var(--bad)" data-test="archive-warning">${a.warning}</p>`}
    <div class="grid">
      <${Stat} k="State" cls=${bad ? 'bad' : a.state === 'ok' ? 'ok' : ''} v=${a.state}
        s=${a.last_upload_at ? `last upload ${a.last_upload_at}` : 'nothing uploaded yet'} />
      <${Stat} k="Not yet archived" v=${fmtBytes(a.lag_bytes)}
        s=${`${fmtCount(a.pending_segments)} sealed segments · ${fmtDuration(a.lag_seconds)} behind`} />
      <${Stat} k="Writeback rate" v=${fmtBits((a.rate_bytes_per_second || 0) * 8)}
        s=${`${fmtBytes(a.uploaded_bytes_total)} in ${fmtCount(a.uploaded_segments_total)} segments`} />
      <${Stat} k="Reads from the archive" v=${fmtBytes(a.read_bytes_total)}
        s=${`${fmtCount(a.read_requests_total)} GETs · cache ${fmtBytes(a.cache_bytes)} of ${fmtBytes(a.cache_limit_bytes)}`} />
      <${Stat} k="Local copies evicted" v=${fmtBytes(a.evicted_bytes_total)}
        cls=${a.lost_bytes_total ? 'bad' : ''} s=${`${fmtBytes(a.lost_bytes_total)} lost before archiving`} />
    </div>
    ${a.last_error && html`<p class="mono" style="color:var(--bad)" data-test="archive-error">${a.last_error}
      ${a.last_error_at && html`<span class="muted"> (${a.last_error_at})</span>`}</p>`}
    ${a.probes && a.probes.length > 0 && html`<p class="muted">Probes in the archive: ${a.probes.map((p) => html`<a class="mono" href=${`#/files?probe=${encodeURIComponent(p)}`}>${p}</a> `)}</p>`}
  </section>`;
}
