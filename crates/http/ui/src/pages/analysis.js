// Post capture analysis: the manual's filter blocks editor (named blocks combined by an
// expression) or a tcpdump expression, a time range, "Run analysis" and "Download pcap".
// Filters are checked by the server as you type; an error is shown under the field that
// holds the mistake, with a caret under the column. An analysis runs in the background on
// the server: the page shows how far it is and can cancel it.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import * as API from '../api.js';
import { TimeChart } from '../chart.js';
import { html, Caret, ErrorMsg, Stat, useLoad, fmtBits, fmtBytes, fmtCount, fmtDuration, fmtTime, fmtPps } from '../ui.js';

const EXAMPLES = [
  'ipv4.proto == tcp', 'ipv4.proto == udp', 'ipv4.addr == 192.168.1.0/24', 'tcp.port == 80',
  'udp.port == 3000-4000', 'ether.addr == 00:ba:be:', 'frame.size <= 128', 'vlan.id == 1234',
];

/** The appliance text for blocks + expression, and where each field starts in it. */
export function compose(blocks, expression) {
  let text = '';
  const at = [];
  blocks.forEach((b, i) => {
    at.push({ field: `name${i}`, start: text.length, len: b.name.length });
    text += `${b.name}: `;
    at.push({ field: `expr${i}`, start: text.length, len: b.expr.length });
    text += `${b.expr}; `; // one line: it travels in a URL for the download
  });
  at.push({ field: 'expression', start: text.length, len: expression.length });
  text += expression;
  return { text, at };
}

/** Which field an error offset falls in, and the column within it. */
export function locate(at, offset) {
  if (offset === null || offset === undefined) return null;
  let best = at[at.length - 1];
  for (const a of at) if (offset >= a.start && offset <= a.start + a.len + 1) { best = a; break; }
  return { field: best.field, column: Math.max(0, Math.min(offset - best.start, best.len)) };
}

/** A table of rows with a bar for each row's share of the bytes. */
function Table({ title, list, cols, test, rows = 20 }) {
  const [all, setAll] = useState(false);
  if (!list || !list.length) return null;
  const max = Math.max(1, ...list.map((x) => x.bytes || 0));
  const shown = all ? list : list.slice(0, rows);
  return html`<section class="panel" data-test=${test}><h2>${title}</h2>
    <table class="bars"><thead><tr>${cols.map((c) => html`<th class=${c.num ? 'num' : ''}>${c.label}</th>`)}<th></th></tr></thead>
    <tbody>${shown.map((x) => html`<tr>${cols.map((c) => html`<td class=${c.num ? 'num' : 'mono'}>${c.f(x)}</td>`)}
      <td class="barcell"><div class="hbar" style=${`width:${(100 * (x.bytes || 0)) / max}%`}></div></td></tr>`)}</tbody>
    </table>
    ${list.length > shown.length && html`<button class="small" style="margin-top:8px" onClick=${() => setAll(true)}>Show all ${fmtCount(list.length)}</button>`}
    </section>`;
}

const PB = [{ label: 'Packets', num: true, f: (x) => fmtCount(x.packets) }, { label: 'Bytes', num: true, f: (x) => fmtBytes(x.bytes) }];
const hostPort = (a, p) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

/** The summary of `wirecap_query::Analysis`: totals, a time chart, protocols, talkers, ports, flows. */
function Result({ r }) {
  const step = r.series_step_secs || 1;
  const series = r.series || [];
  const chart = [series.map((x) => x.ts_sec), series.map((x) => x.packets / step), series.map((x) => (8 * x.bytes) / step)];
  const s = r.scan || {};
  return html`<div data-test="analysis-result">
    <div class="grid">
      <${Stat} k="Matched packets" v=${fmtCount(r.packets)} s=${`of ${fmtCount(s.packets_examined)} examined`} />
      <${Stat} k="Matched bytes" v=${fmtBytes(r.bytes)} s=${`${fmtBytes(r.captured_bytes)} captured`} />
      <${Stat} k="Time span" v=${r.first_ns ? fmtDuration((r.last_ns - r.first_ns) / 1e9) : '–'}
        s=${r.first_ns ? `${fmtTime(r.first_ns)} →` : 'no packet matched'} />
      <${Stat} k="Took" v=${`${fmtCount(r.elapsed_ms)} ms`}
        s=${`${fmtCount(s.chunks_read)} chunks read, ${fmtCount(s.chunks_skipped)} skipped by the filter`} />
    </div>
    ${series.length > 1 && html`<section class="panel"><h2>Over time <span class="muted" style="font-weight:400">(${step} s per point)</span></h2>
      <div class="grid2">
        <${TimeChart} data=${[chart[0], chart[1]]} yFormat=${fmtPps} height=${180}
          series=${[{ label: 'packets/s', color: '#7b3fc4', fill: 'rgba(123,63,196,.08)', format: fmtPps }]} />
        <${TimeChart} data=${[chart[0], chart[2]]} yFormat=${fmtBits} height=${180}
          series=${[{ label: 'bits/s', color: '#1677c9', fill: 'rgba(22,119,201,.08)', format: fmtBits }]} />
      </div></section>`}
    <div class="grid2">
      <${Table} title="Protocols" test="protocols" list=${r.protocols}
        cols=${[{ label: 'Layer', f: (x) => x.layer }, { label: 'Protocol', f: (x) => x.name }, ...PB]} />
      <${Table} title="Top talkers" list=${r.talkers}
        cols=${[{ label: 'Between', f: (x) => `${x.a} ↔ ${x.b}` }, ...PB]} />
      <${Table} title="Top ports" list=${r.ports} cols=${[{ label: 'Port', f: (x) => `${x.proto}/${x.port}` }, ...PB]} />
    </div>
    <${Table} title=${`Flows (largest ${fmtCount((r.flows || []).length)} of ${fmtCount(r.flows_tracked)})`} list=${r.flows}
      cols=${[{ label: 'Proto', f: (x) => x.proto }, { label: 'From', f: (x) => hostPort(x.src, x.sport) },
        { label: 'To', f: (x) => hostPort(x.dst, x.dport) }, { label: 'Flags', f: (x) => x.tcp_flags || '' },
        { label: 'Duration', num: true, f: (x) => fmtDuration((x.last_ns - x.first_ns) / 1e9) }, ...PB]} />
  </div>`;
}

export function Analysis({ route }) {
  const [streams] = useLoad(() => API.streams({ limit: 200 }), []);
  const [stream, setStream] = useState(route.query.stream || '');
  const [mode, setMode] = useState('blocks');
  const [blocks, setBlocks] = useState([{ name: 'block0', expr: '' }]);
  const [expression, setExpression] = useState('block0');
  const [bpf, setBpf] = useState('');
  const [start, setStart] = useState('');
  const [stop, setStop] = useState('');
  const [check, setCheck] = useState(null); // { field, column, message } or null
  const [result, setResult] = useState(null);
  const [runError, setRunError] = useState(null);
  const [running, setRunning] = useState(false);
  const [job, setJob] = useState(null); // the background analysis while it runs
  const cancelled = useRef(false);

  useEffect(() => { if (!stream && streams && streams.streams.length) setStream(streams.streams[0].name); }, [streams]);
  const info = streams && streams.streams.find((s) => s.name === stream);

  const composed = useMemo(() => compose(blocks, expression), [blocks, expression]);
  const empty = mode === 'bpf' ? !bpf.trim() : blocks.every((b) => !b.expr.trim());
  const filterText = mode === 'bpf' ? bpf : composed.text;

  // Check the filter on the server as the user types (debounced).
  useEffect(() => {
    if (empty) { setCheck(null); return undefined; }
    const id = setTimeout(async () => {
      try {
        const r = await API.checkFilter({ language: mode === 'bpf' ? 'bpf' : 'appliance', text: filterText });
        if (r.ok) { setCheck(null); return; }
        const e = r.error;
        const where = mode === 'bpf' ? { field: 'bpf', column: e.offset ?? 0 } : locate(composed.at, e.offset) || { field: 'expression', column: 0 };
        setCheck({ ...where, message: e.message, located: e.offset !== null && e.offset !== undefined });
      } catch (e) {
        setCheck({ field: 'general', column: 0, message: e.message });
      }
    }, 300);
    return () => clearTimeout(id);
  }, [filterText, mode]);

  const params = () => {
    const p = { start: start || undefined, stop: stop || undefined };
    if (!empty) { if (mode === 'bpf') p.bpf = bpf; else p.filter = composed.text; }
    return p;
  };
  const run = async () => {
    setRunning(true); setRunError(null); setResult(null); setJob(null);
    cancelled.current = false;
    try {
      let j = await API.analyses.start(stream, params());
      setJob(j);
      while (j.state === 'running') {
        await new Promise((r) => setTimeout(r, 250));
        j = await API.analyses.get(j.id);
        setJob(j);
      }
      if (j.state === 'done') setResult(j.result);
      else if (j.state === 'failed') setRunError(new Error(j.error));
    } catch (e) {
      setRunError(e);
    } finally {
      setRunning(false);
    }
  };
  const cancel = async () => {
    if (!job) return;
    cancelled.current = true;
    try { setJob(await API.analyses.cancel(job.id)); } catch (e) { setRunError(e); }
  };
  const download = () => { location.href = API.downloadUrl.filtered(stream, params()); };
  const errFor = (field) => (check && check.field === field ? check : null);
  const setBlock = (i, patch) => setBlocks(blocks.map((b, j) => (j === i ? { ...b, ...patch } : b)));
  const addBlock = () => {
    let n = blocks.length;
    while (blocks.some((b) => b.name === `block${n}`)) n++;
    setBlocks([...blocks, { name: `block${n}`, expr: '' }]);
  };
  const removeBlock = (i) => setBlocks(blocks.filter((_, j) => j !== i));
  const lastFocus = useMemo(() => ({ i: 0 }), []);
  const useExample = (ex) => setBlock(Math.min(lastFocus.i, blocks.length - 1), { expr: ex });
  const range = (a, b) => { setStart(a ? fmtTime(a).replace(' ', 'T') + 'Z' : ''); setStop(b ? fmtTime(b).replace(' ', 'T') + 'Z' : ''); };

  return html`<div>
    <h1>Analysis</h1>
    <section class="panel">
      <div class="row">
        <div class="field" style="flex:1;max-width:460px"><label for="stream">Stream</label>
          <input id="stream" class="mono" list="streamlist" value=${stream} onInput=${(e) => setStream(e.target.value)} data-test="analysis-stream" />
          <datalist id="streamlist">${streams && streams.streams.map((s) => html`<option value=${s.name} />`)}</datalist></div>
        <div class="field"><label for="start">From (UTC, inclusive)</label>
          <input id="start" class="mono" placeholder="stream start" value=${start} onInput=${(e) => setStart(e.target.value)} size="26" /></div>
        <div class="field"><label for="stop">To (UTC, exclusive)</label>
          <input id="stop" class="mono" placeholder="stream end" value=${stop} onInput=${(e) => setStop(e.target.value)} size="26" /></div>
        <div class="field"><label>Quick range</label><div class="row">
          <button class="small" onClick=${() => range(null, null)}>whole stream</button>
          ${info && info.first_ns && html`<button class="small" onClick=${() => range(info.first_ns, Number(info.first_ns) + 60e9)}>first minute</button>
            <button class="small" onClick=${() => range(Number(info.last_ns) - 60e9, Number(info.last_ns) + 1)}>last minute</button>`}
        </div></div>
      </div>
      <p class="muted" style="margin:6px 0 0">${info ? html`${stream}: ${fmtTime(info.first_ns)} → ${fmtTime(info.last_ns)} UTC, ${fmtCount(info.packets)} packets. ` : ''}
        Times: ISO-8601 (<code>2025-01-01T09:00:05.25Z</code>), <code>20250101_09:00:05.250.000.000</code> or ns since the epoch.</p>
    </section>

    <section class="panel" data-test="filter-editor">
      <div class="tabs" role="tablist">
        <button type="button" role="tab" class=${mode === 'blocks' ? 'on' : ''} onClick=${() => setMode('blocks')} data-test="mode-blocks">Filter blocks</button>
        <button type="button" role="tab" class=${mode === 'bpf' ? 'on' : ''} onClick=${() => setMode('bpf')} data-test="mode-bpf">tcpdump expression</button>
      </div>
      ${mode === 'blocks' ? html`<div>
        <div class="block muted" style="font-size:12px"><span>Block name</span><span>Filter block</span><span></span></div>
        ${blocks.map((b, i) => html`<div class="block" key=${i}>
          <div><input class=${`mono ${errFor(`name${i}`) ? 'invalid' : ''}`} value=${b.name} aria-label=${`name of block ${i}`}
            onInput=${(e) => setBlock(i, { name: e.target.value })} data-test=${`block-name-${i}`} />
            <${Caret} value=${b.name} err=${errFor(`name${i}`)} /></div>
          <div><input class=${`mono ${errFor(`expr${i}`) ? 'invalid' : ''}`} value=${b.expr} placeholder="ipv4.proto == tcp"
            aria-label=${`filter block ${b.name}`} onFocus=${() => { lastFocus.i = i; }}
            onInput=${(e) => setBlock(i, { expr: e.target.value })} data-test=${`block-expr-${i}`} />
            <${Caret} value=${b.expr} err=${errFor(`expr${i}`)} /></div>
          <button class="small" onClick=${() => removeBlock(i)} disabled=${blocks.length === 1} title="remove block">✕</button>
        </div>`)}
        <button class="small" onClick=${addBlock} data-test="add-block">+ Add block</button>
        <div class="field" style="margin-top:12px"><label for="expr">Filter expression over the blocks (<code>!</code> <code>&</code> <code>|</code> <code>( )</code>)</label>
          <input id="expr" class=${`mono ${errFor('expression') ? 'invalid' : ''}`} value=${expression}
            onInput=${(e) => setExpression(e.target.value)} data-test="expression" />
          <${Caret} value=${expression} err=${errFor('expression')} /></div>
        <p class="examples">Examples (click to use in the focused block): ${EXAMPLES.map((ex) => html`<code onClick=${() => useExample(ex)}>${ex}</code>`)}</p>
      </div>` : html`<div class="field"><label for="bpf">tcpdump / BPF expression</label>
        <input id="bpf" class=${`mono ${errFor('bpf') ? 'invalid' : ''}`} value=${bpf} placeholder="tcp port 80 and host 10.0.0.1"
          onInput=${(e) => setBpf(e.target.value)} data-test="bpf" />
        <${Caret} value=${bpf} err=${errFor('bpf')} /></div>`}
      ${check && check.field === 'general' && html`<div class="msg error">${check.message}</div>`}
      <div class="row" style="margin-top:14px">
        <button class="primary" onClick=${run} disabled=${!stream || running || !!check} data-test="run-analysis">${running ? 'Analyzing…' : '▶ Run analysis'}</button>
        <button onClick=${download} disabled=${!stream || !!check} data-test="download-filtered">⤓ Download pcap</button>
        <span class="muted">${empty ? 'No filter: every packet in the range.' : check ? '' : html`<span style="color:var(--ok)">✓ filter is valid</span>`}</span>
      </div>
    </section>

    ${job && (job.state === 'running' || job.state === 'cancelled') && html`<section class="panel" data-test="analysis-progress">
      <div class="row">
        <progress max="1" value=${job.fraction} style="flex:1"></progress>
        <span data-test="analysis-percent">${Math.floor(100 * job.fraction)}%</span>
        <span class="muted">${fmtCount(job.examined)} of ${fmtCount(job.total)} packets</span>
        ${job.state === 'running'
          ? html`<button class="small" onClick=${cancel} data-test="cancel-analysis">✕ Cancel</button>`
          : html`<b data-test="analysis-cancelled">Cancelled after ${fmtCount(job.examined)} of ${fmtCount(job.total)} packets.</b>`}
      </div>
    </section>`}
    <${ErrorMsg} error=${runError} />
    ${result && html`<${Result} r=${result} />`}
  </div>`;
}
