// Capture: a name and REC, or the running capture with STOP.
import { useState } from 'preact/hooks';
import * as API from '../api.js';
import { html, Confirm, ErrorMsg, usePoll, fmtBits, fmtBytes, fmtCount, fmtDuration, fmtPps, fmtTime, nsToSec, href } from '../ui.js';

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

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const EMPTY = { name: '', kind: 'cron', cron: '0 2 * * *', duration: '1h', days: 'mon,tue,wed,thu,fri', start: '08:00', stop: '18:00', timezone: '', stream: '', enabled: true };

/** A schedule as the form edits it. */
const formOf = (s) => ({
  name: s.name,
  kind: s.cron ? 'cron' : 'weekly',
  cron: s.cron || EMPTY.cron,
  duration: s.duration || EMPTY.duration,
  days: (s.days || []).join(',') || EMPTY.days,
  start: s.start || EMPTY.start,
  stop: s.stop || EMPTY.stop,
  timezone: '',
  stream: s.stream && s.stream !== s.name ? s.stream : '',
  enabled: s.enabled,
});

/** The API's body for a form: only the keys of its kind, blanks left out. */
const bodyOf = (f) => {
  const b = { name: f.name.trim(), enabled: f.enabled };
  if (f.kind === 'cron') { b.cron = f.cron.trim(); b.duration = f.duration.trim(); } else {
    b.days = f.days.split(/[\s,]+/).filter(Boolean);
    b.start = f.start.trim(); b.stop = f.stop.trim();
  }
  if (f.timezone.trim()) b.timezone = f.timezone.trim();
  if (f.stream.trim()) b.stream = f.stream.trim();
  return b;
};

/** Add or edit one schedule; the server's answer (the API's own message) is shown at its field. */
function ScheduleForm({ initial, editing, onDone, onCancel }) {
  const [f, setF] = useState(initial);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (patch) => setF({ ...f, ...patch });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true); setError(null);
    try {
      if (editing) await API.schedule.put(editing, bodyOf(f)); else await API.schedule.add(bodyOf(f));
      onDone(editing ? `Schedule ${f.name} changed.` : `Schedule ${f.name} added.`);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const field = error && error.body && error.body.field;
  const at = (k) => field === k && html`<div class="inline-error" role="alert" data-test="schedule-error">${error.message}</div>`;
  const input = (k, label, attrs = {}) => html`<div class="field"><label for=${`sf-${k}`}>${label}</label>
    <input id=${`sf-${k}`} class=${`mono ${field === k ? 'invalid' : ''}`} value=${f[k]} onInput=${(e) => set({ [k]: e.target.value })}
      data-test=${`schedule-${k}`} ...${attrs} />${at(k)}</div>`;
  return html`<form class="panel" onSubmit=${submit} data-test="schedule-form">
    <h2>${editing ? `Edit schedule ${editing}` : 'New schedule'}</h2>
    <div class="row">
      ${input('name', 'Name', { size: 16, disabled: !!editing })}
      <div class="field"><label for="sf-kind">Kind</label>
        <select id="sf-kind" value=${f.kind} onChange=${(e) => set({ kind: e.target.value })} data-test="schedule-kind">
          <option value="cron">cron start + duration</option><option value="weekly">weekly window</option></select></div>
      ${f.kind === 'cron'
        ? html`${input('cron', 'Cron (min hour day month weekday)', { size: 16 })}${input('duration', 'Duration', { size: 8 })}`
        : html`${input('days', `Days (${DAYS.join(',')} or daily)`, { size: 22 })}${input('start', 'Start', { size: 6 })}${input('stop', 'Stop', { size: 6 })}`}
      ${input('timezone', 'Time zone (blank: the file’s, else UTC)', { size: 16, placeholder: 'Europe/Berlin' })}
      ${input('stream', 'Stream name (blank: the schedule’s)', { size: 14 })}
      <label class="field" style="flex-direction:row;align-items:center;gap:6px"><input type="checkbox" checked=${f.enabled}
        onChange=${(e) => set({ enabled: e.target.checked })} data-test="schedule-enabled" /> enabled</label>
    </div>
    ${error && !field && html`<${ErrorMsg} error=${error} />`}
    ${error && field && !['name', 'cron', 'duration', 'days', 'start', 'stop', 'timezone', 'stream'].includes(field)
      && html`<div class="inline-error" role="alert" data-test="schedule-error">${error.message}</div>`}
    <div class="row" style="margin-top:10px">
      <button class="primary" type="submit" disabled=${busy} data-test="schedule-save">${editing ? 'Save' : 'Add schedule'}</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

/** The schedules (from wirecap.toml) with their next start and stop and what they last did;
 * admins add, edit, enable/disable and remove them (the file is rewritten and applied at once). */
function Schedules() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState(null);
  const [form, setForm] = useState(null); // { initial, editing }
  const [confirm, setConfirm] = useState(null);
  const [n, setN] = useState(0);
  usePoll(async () => {
    try {
      const r = await API.schedules();
      setList(r.schedules);
      setError(r.error ? new Error(`wirecap.toml: ${r.error}`) : null);
    } catch (e) {
      setError(e);
    }
  }, 5000, [n]);
  const reload = (m) => { setMsg(m); setForm(null); setN(n + 1); };
  const toggle = async (s) => {
    setError(null);
    try {
      await API.schedule.put(s.name, bodyOf({ ...formOf(s), enabled: !s.enabled }));
      reload(`Schedule ${s.name} ${s.enabled ? 'disabled' : 'enabled'}.`);
    } catch (e) { setError(e); }
  };
  const remove = async () => {
    const name = confirm;
    setConfirm(null);
    try { await API.schedule.remove(name); reload(`Schedule ${name} removed.`); } catch (e) { setError(e); }
  };
  return html`<section class="panel" data-test="schedules">
    <h2>Scheduled captures</h2>
    <${ErrorMsg} error=${error} />
    ${msg && html`<div class="msg ok" data-test="schedules-msg">${msg}</div>`}
    ${list && list.length === 0 && html`<p class="muted">No schedules yet (also <code>wirecap schedule add</code>,
      <code>POST /api/v1/schedules</code> or <code>[[schedule]]</code> in wirecap.toml).</p>`}
    ${list && list.length > 0 && html`<div class="table-wrap"><table data-test="schedules-table"><thead><tr><th>Name</th><th>When</th><th>Time zone</th>
      <th>Next start</th><th>Next stop</th><th>State</th><th>Last event</th><th></th></tr></thead><tbody>
      ${list.map((s) => html`<tr data-test="schedule-row" data-name=${s.name}>
        <td class="mono">${s.name}</td><td class="mono">${when(s)}</td><td>${s.timezone}</td>
        <td data-test="schedule-next-start">${s.next_start || '–'}</td><td>${s.next_stop || '–'}</td>
        <td data-test="schedule-state">${scheduleState(s)}</td>
        <td class="muted">${s.last_event ? `${s.last_event.at}: ${s.last_event.text}` : '–'}</td>
        <td class="actions" style="white-space:nowrap">
          <button class="small" onClick=${() => toggle(s)} data-test="schedule-toggle">${s.enabled ? 'Disable' : 'Enable'}</button>
          <button class="small" onClick=${() => setForm({ initial: formOf(s), editing: s.name })} data-test="schedule-edit">Edit</button>
          <button class="small danger" onClick=${() => setConfirm(s.name)} data-test="schedule-remove">Remove</button></td></tr>`)}
    </tbody></table></div>`}
    ${form
      ? html`<${ScheduleForm} key=${form.editing || 'new'} initial=${form.initial} editing=${form.editing}
          onDone=${reload} onCancel=${() => setForm(null)} />`
      : html`<button class="small" style="margin-top:10px" onClick=${() => { setMsg(null); setForm({ initial: EMPTY, editing: null }); }} data-test="schedule-add">+ Add schedule</button>`}
    ${confirm && html`<${Confirm} title=${`Remove schedule ${confirm}?`} confirm="Remove" onConfirm=${remove} onCancel=${() => setConfirm(null)}>
      <p>Its streams stay; a capture it is running is stopped and sealed.</p></${Confirm}>`}
    <p class="muted">A manual capture always wins: a schedule never stops it, and stopping a scheduled capture here
      suspends that window until its next one.</p>
  </section>`;
}
