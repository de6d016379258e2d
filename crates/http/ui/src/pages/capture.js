// Capture: a name and REC, or the running capture with STOP.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, ErrorMsg, usePoll, fmtBits, fmtBytes, fmtCount, fmtDuration, fmtPps, fmtTime, nsToSec, href } from '../ui.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function Capture({ status, refresh }) {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const s = status || {};
  const nameOk = NAME_RE.test(name);

  const act = async (f) => {
    setBusy(true);
    setError(null);
    try {
      const r = await f();
      setDone(r && (r.message || r.Str || null));
      await refresh();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const start = (e) => { e.preventDefault(); if (nameOk) act(() => API.captureStart(name)); };
  const stop = () => act(() => API.captureStop());
  const started = s.capture_started_ns ? nsToSec(s.capture_started_ns) : null;

  return html`<div>
    <h1>Capture</h1>
    <${ErrorMsg} error=${error} />
    ${done && html`<div class="msg ok" data-test="capture-msg">${done}</div>`}
    <section class="panel" data-test="capture-status">
      <h2>Status</h2>
      <table class="kv"><tbody>
        <tr><td>Capture running</td><td><b data-test="capture-running">${s.capture_active ? 'true' : 'false'}</b>
          ${s.capture_active && html` <span class="rec">REC</span>`}</td></tr>
        ${s.capture_active && html`
          <tr><td>Name</td><td class="mono" data-test="capture-name">${s.capture_name}</td></tr>
          ${s.capture_stream && html`<tr><td>Stored as</td><td><a class="mono" href=${href(['files', s.capture_stream])}>${s.capture_stream}</a></td></tr>`}
          ${started && html`<tr><td>Started</td><td>${fmtTime(s.capture_started_ns, false)} UTC</td></tr>`}
          ${started && html`<tr><td>Duration</td><td data-test="capture-duration">${fmtDuration(Date.now() / 1000 - started)}</td></tr>`}
          <tr><td>Bytes</td><td data-test="capture-bytes">${fmtBytes(s.capture_bytes)} <span class="muted">(${fmtCount(s.capture_bytes)})</span></td></tr>
          <tr><td>Packets</td><td data-test="capture-packets">${fmtCount(s.capture_packets)}</td></tr>
          <tr><td>Rate</td><td>${fmtBits(s.capture_bps)} · ${fmtPps(s.capture_pps)}</td></tr>
          <tr><td>Dropped</td><td>${fmtCount(s.packets_dropped)}</td></tr>`}
        ${s.source && html`<tr><td>Source</td><td class="mono">${s.source}</td></tr>`}
      </tbody></table>
    </section>

    <section class="panel">
      ${s.capture_active
        ? html`<div class="row"><button class="stopbtn" onClick=${stop} disabled=${busy} data-test="stop">■ STOP</button>
            <span class="muted">Stops the capture (manual or scheduled) and seals the stream.</span></div>`
        : html`<form class="row" onSubmit=${start}>
            <div class="field" style="flex:1; max-width:420px">
              <label for="capname">Capture name</label>
              <input id="capname" class=${`mono ${name && !nameOk ? 'invalid' : ''}`} placeholder="manual_capture"
                value=${name} onInput=${(e) => setName(e.target.value)} autofocus data-test="capture-name-input" />
            </div>
            <button class="recbtn" type="submit" disabled=${busy || !nameOk} data-test="rec-button">● REC</button>
            <span class="muted" style="flex-basis:100%">${name && !nameOk
              ? html`<span style="color:var(--bad)">Use letters, digits, <code>_</code> <code>-</code> <code>.</code> only (at most 64).</span>`
              : 'The stored name gets a _YYYYMMDD_HHMM suffix (UTC), as on the appliance.'}</span>
          </form>`}
    </section>

    <${Schedules} />
  </div>`;
}

const when = (s) => (s.cron ? `cron ${s.cron} for ${s.duration}` : `${(s.days || []).join(',')} ${s.start}–${s.stop}`);
const scheduleState = (s) => {
  if (!s.enabled) return 'disabled';
  if (s.active) return html`<span class="rec">REC</span>`;
  return s.suspended_until ? 'suspended' : 'waiting';
};

/** The schedules (from wirecap.toml) with their next start and stop and what they last did. */
function Schedules() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  usePoll(async () => {
    try {
      const r = await API.schedules();
      setList(r.schedules);
      setError(r.error ? new Error(`wirecap.toml: ${r.error}`) : null);
    } catch (e) {
      setError(e);
    }
  }, 5000);
  return html`<section class="panel" data-test="schedules">
    <h2>Scheduled captures</h2>
    <${ErrorMsg} error=${error} />
    ${list && list.length === 0 && html`<p class="muted">No schedules. Add one with${' '}
      <code>wirecap schedule add</code> or <code>POST /api/v1/schedules</code>.</p>`}
    ${list && list.length > 0 && html`<div class="table-wrap"><table data-test="schedules-table"><thead><tr><th>Name</th><th>When</th><th>Time zone</th>
      <th>Next start</th><th>Next stop</th><th>State</th><th>Last event</th></tr></thead><tbody>
      ${list.map((s) => html`<tr data-test="schedule-row">
        <td class="mono">${s.name}</td><td class="mono">${when(s)}</td><td>${s.timezone}</td>
        <td data-test="schedule-next-start">${s.next_start || '–'}</td><td>${s.next_stop || '–'}</td>
        <td data-test="schedule-state">${scheduleState(s)}</td>
        <td class="muted">${s.last_event ? `${s.last_event.at}: ${s.last_event.text}` : '–'}</td></tr>`)}
    </tbody></table></div>`}
    <p class="muted">A manual capture always wins: a schedule never stops it, and stopping a scheduled capture here
      suspends that window until its next one.</p>
  </section>`;
}
