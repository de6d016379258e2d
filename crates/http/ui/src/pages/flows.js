// Flows (Arkime's Sessions view is the model): every flow of every stream in a time
// range, through a filter in either language (checked as you type, the mistake shown
// under the field with a caret), in a paged table sortable by any column; each flow's
// packets as a pcap, all matching packets as one pcap (a search across the streams),
// and a link to the flow's time window on its stream's Files page.
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import * as API from '../api.js';
import {
  html, Caret, ErrorMsg, Stat, useLoad, fmtBytes, fmtCount, fmtDuration, fmtTime, href,
} from '../ui.js';

const PAGE = 100;
const COLS = [
  ['start', 'Start (UTC)'], ['duration', 'Duration', true], ['src', 'Source'], ['dst', 'Destination'],
  ['proto', 'Protocol'], ['packets', 'Packets', true], ['bytes', 'Bytes', true], [null, 'Flags'], ['stream', 'Stream'],
];
const iso = (ns) => `${fmtTime(ns).replace(' ', 'T')}Z`;
const endpoint = (a, p) => (p === null || p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

/** The last hour of the newest stream: where a search usually starts. */
async function defaultRange() {
  const s = await API.streams({ limit: 1 });
  const newest = s.streams.find((x) => x.last_ns);
  if (!newest) return null;
  const stop = Number(newest.last_ns) + 1e6;
  return { start: iso(Math.max(Number(newest.first_ns), stop - 3600e9)), stop: iso(stop) };
}

export function Flows({ route }) {
  const q = route.query;
  const [start, setStart] = useState(q.start || '');
  const [stop, setStop] = useState(q.stop || '');
  const [lang, setLang] = useState(q.bpf !== undefined ? 'bpf' : 'filter');
  const [text, setText] = useState(q.bpf ?? q.filter ?? '');
  const [check, setCheck] = useState(null); // { column, message } or null
  const [back, setBack] = useState([]); // cursors of the pages before this one

  // No range in the URL: the last hour of the newest stream.
  useEffect(() => {
    if (q.start && q.stop) return;
    defaultRange().then((r) => {
      if (r) location.hash = href(['flows'], { ...q, ...r });
    }, () => {});
  }, []);
  // The form follows the URL (back/forward, a link from elsewhere).
  useEffect(() => {
    setStart(q.start || ''); setStop(q.stop || '');
    if (q.bpf !== undefined) { setLang('bpf'); setText(q.bpf); } else { setLang('filter'); setText(q.filter || ''); }
  }, [q.start, q.stop, q.bpf, q.filter]);

  // Check the filter on the server as the user types (debounced).
  useEffect(() => {
    if (!text.trim()) { setCheck(null); return undefined; }
    const id = setTimeout(async () => {
      try {
        const r = await API.checkFilter({ language: lang === 'bpf' ? 'bpf' : 'appliance', text });
        setCheck(r.ok ? null : { column: Math.max(0, Math.min(r.error.offset ?? 0, text.length)), message: r.error.message });
      } catch (e) {
        setCheck({ column: 0, message: e.message });
      }
    }, 300);
    return () => clearTimeout(id);
  }, [text, lang]);

  const sort = q.sort || 'start';
  const ready = !!(q.start && q.stop);
  const asked = { start: q.start, stop: q.stop, filter: q.filter, bpf: q.bpf };
  const question = { ...asked, sort, limit: PAGE, cursor: q.cursor };
  const [data, error, loading] = useLoad(
    // The answer remembers its question: the browser test waits for a given one.
    () => (ready ? API.flows(question).then((d) => ({ ...d, question: new URLSearchParams(JSON.parse(JSON.stringify(question))).toString() })) : Promise.resolve(null)),
    [q.start, q.stop, q.filter, q.bpf, sort, q.cursor],
  );
  useLayoutEffect(() => {
    // When the rows are in the document, in ms since navigation start (read by the browser test).
    if (data) window.__wirecapRendered = { page: 'flows', at: performance.now(), rows: data.flows.length, total: data.total, question: data.question };
  }, [data]);

  const go = (patch) => { location.hash = href(['flows'], { ...asked, sort, ...patch }); };
  const submit = (e) => {
    e.preventDefault();
    const f = text.trim() ? text : undefined;
    go({ start, stop, filter: lang === 'filter' ? f : undefined, bpf: lang === 'bpf' ? f : undefined, cursor: undefined });
  };
  // A new question starts at its first page.
  useEffect(() => { if (!q.cursor) setBack([]); }, [q.start, q.stop, q.filter, q.bpf, sort, q.cursor]);
  /** The link that sorts by `key`: numbers largest first, names A to Z; again reverses. */
  const sortHref = (key, num) => {
    const [cur, desc] = sort.startsWith('-') ? [sort.slice(1), true] : [sort, false];
    const s = cur === key ? (desc ? key : `-${key}`) : (num ? `-${key}` : key);
    return href(['flows'], { ...asked, sort: s });
  };
  const next = () => { setBack([...back, q.cursor || '']); go({ cursor: data.next }); };
  const prev = () => { const b = [...back]; const c = b.pop(); setBack(b); go({ cursor: c || undefined }); };
  const arrow = (key) => (sort === key ? ' ▲' : sort === `-${key}` ? ' ▼' : '');

  return html`<div>
    <h1>Flows</h1>
    <form class="panel" onSubmit=${submit} data-test="flows-form">
      <div class="row">
        <div class="field"><label for="fstart">From (UTC, inclusive)</label>
          <input id="fstart" class="mono" size="26" value=${start} onInput=${(e) => setStart(e.target.value)} data-test="flows-start" /></div>
        <div class="field"><label for="fstop">To (UTC, exclusive)</label>
          <input id="fstop" class="mono" size="26" value=${stop} onInput=${(e) => setStop(e.target.value)} data-test="flows-stop" /></div>
        <div class="field"><label for="flang">Language</label>
          <select id="flang" value=${lang} onChange=${(e) => setLang(e.target.value)} data-test="flows-lang">
            <option value="filter">filter blocks</option><option value="bpf">tcpdump</option></select></div>
        <div class="field" style="flex:1;min-width:280px"><label for="ftext">Filter (empty: every flow)</label>
          <input id="ftext" class=${`mono ${check ? 'invalid' : ''}`} value=${text} onInput=${(e) => setText(e.target.value)}
            placeholder=${lang === 'bpf' ? 'host 10.0.0.1 and tcp port 443' : 'x: ipv4.addr == 10.0.0.1; y: tcp.port == 443; x & y'} data-test="flows-filter" />
          <${Caret} value=${text} err=${check} /></div>
        <button class="primary" type="submit" disabled=${!!check || !start || !stop} data-test="flows-search">Search</button>
      </div>
      <p class="muted" style="margin:6px 0 0">Times: ISO-8601 (<code>2025-01-01T09:00:05.25Z</code>) or ns since the epoch. A flow is listed when its span overlaps the range and it may hold a packet the filter matches (exact for addresses, ports, protocols, VLANs); its figures are the whole flow's.</p>
    </form>
    <${ErrorMsg} error=${error} />
    ${data && html`<div>
      <div class="grid" data-test="flows-totals">
        <${Stat} k="Flows" v=${fmtCount(data.total)} s=${`in ${fmtCount(data.streams)} stream${data.streams === 1 ? '' : 's'}`} />
        <${Stat} k="Packets" v=${fmtCount(data.packets)} s="in matching flows" />
        <${Stat} k="Bytes" v=${fmtBytes(data.bytes)} s=${`${fmtCount(data.bytes)} bytes`} />
      </div>
      ${data.skipped.length > 0 && html`<div class="msg error">Not read (damaged; they may hold packets of this range): ${data.skipped.map((s) => `${s.name} (${s.why})`).join('; ')}</div>`}
      <div class="toolbar">
        <a class="btn small" href=${API.downloadUrl.search(asked)} download data-test="flows-download-all"
          title="every matching packet of every stream in the range, in time order, as one pcap">⤓ all matching packets as pcap</a>
        <span class="spacer"></span>
        <span class="muted" data-test="flows-page">${data.flows.length ? `${fmtCount(back.length * PAGE + 1)}–${fmtCount(back.length * PAGE + data.flows.length)} of ${fmtCount(data.total)}` : ''}</span>
        <button class="small" disabled=${!back.length} onClick=${prev} aria-label="previous page">‹ Prev</button>
        <button class="small" disabled=${!data.next} onClick=${next} aria-label="next page">Next ›</button>
      </div>
      <div class="table-wrap"><table data-test="flows">
        <thead><tr>${COLS.map(([k, label, num]) => html`<th class=${num ? 'num' : ''}>${k
          ? html`<a href=${sortHref(k, num)} data-sort=${k}>${label}${arrow(k)}</a>` : label}</th>`)}<th></th></tr></thead>
        <tbody>${data.flows.map((f) => html`<tr data-packets=${f.packets} data-bytes=${f.bytes} data-first=${f.first_ns}>
          <td class="mono">${fmtTime(f.first_ns)}</td>
          <td class="num">${fmtDuration(f.duration_ns / 1e9)}</td>
          <td class="mono">${endpoint(f.src, f.sport)}</td>
          <td class="mono">${endpoint(f.dst, f.dport)}</td>
          <td>${f.proto}${f.vlan !== null && f.vlan !== undefined ? html` <span class="tag">vlan ${f.vlan}</span>` : ''}</td>
          <td class="num">${fmtCount(f.packets)}</td>
          <td class="num" title=${`${fmtCount(f.bytes)} bytes`}>${fmtBytes(f.bytes)}</td>
          <td class="mono">${f.tcp_flags}</td>
          <td class="mono"><a href=${href(['files', f.stream])}>${f.stream}</a></td>
          <td class="actions">
            <a class="btn small" href=${f.pcap} download data-test="flow-pcap" title="this flow's packets (both directions) as pcap, read at the positions the flow index keeps">⤓ pcap</a>
            <a class="btn small" href=${href(['files', f.stream], { start: f.first_ns, stop: Number(f.last_ns) + 1 })} data-test="flow-files"
              title="this flow's time window on the Files page">Files ›</a></td>
        </tr>`)}
        ${data.flows.length === 0 && html`<tr><td colspan="10" class="muted">No flow in this range matches.</td></tr>`}
        </tbody>
      </table></div>
    </div>`}
    ${loading && !data && ready && html`<p class="muted">Listing flows…</p>`}
  </div>`;
}
