// Files: every stream (paginated on the server, so 1,000 streams cost one small page),
// and a stream's page with all its views and, per view, its splits.
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import * as API from '../api.js';
import {
  html, ErrorMsg, Pager, Confirm, useLoad, fmtBytes, fmtCount, fmtTime, fmtDuration, href,
} from '../ui.js';

const PAGE = 100;

const duration = (a, b) => (a && b ? fmtDuration((Number(b) - Number(a)) / 1e9) : '–');
const Download = ({ url, label = 'pcap', test }) => html`<a class="btn small" href=${url} download data-test=${test}
  title="download as pcap (nanosecond timestamps)">⤓ ${label}</a>`;
const State = ({ state, damage }) => (state === 'damaged'
  // A stream that cannot be read is shown, never hidden: the badge says why on hover.
  ? html`<span class="tag damaged" data-test="damaged" title=${`${damage || 'damaged'} (run \`wirecap verify\` on the server)`}>damaged</span>`
  : html`<span class=${`tag ${state === 'open' || state === 'live' ? 'live' : 'sealed'}`}>${state === 'open' ? 'live' : state}</span>`);

export function Files({ route }) {
  const page = Math.max(1, Number(route.query.page || 1));
  const q = route.query.q || '';
  // With an archive, streams carry their probe: the fleet view filters by it.
  const probe = route.query.probe || '';
  const [text, setText] = useState(q);
  const [doomed, setDoomed] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [data, loadError, loading, reload] = useLoad(() => API.streams({ offset: (page - 1) * PAGE, limit: PAGE, q, probe: probe || undefined }), [page, q, probe]);
  const probes = data && data.streams.some((s) => s.probe);

  useLayoutEffect(() => {
    if (data) {
      // When the rows are in the document, in ms since navigation start (read by the browser test).
      window.__wirecapRendered = { page: 'files', at: performance.now(), rows: data.streams.length };
    }
  }, [data]);
  // Search as you type, without a request per key.
  useEffect(() => {
    if (text === q) return undefined;
    const id = setTimeout(() => { location.hash = href(['files'], { q: text, probe: probe || undefined }); }, 250);
    return () => clearTimeout(id);
  }, [text]);

  const del = async () => {
    setBusy(true);
    try {
      await API.deleteStream(doomed);
      setDoomed(null);
      reload();
    } catch (e) {
      setError(e);
      setDoomed(null);
    } finally {
      setBusy(false);
    }
  };

  return html`<div>
    <h1>Files</h1>
    <${ErrorMsg} error=${error || loadError} />
    <div class="toolbar">
      <input type="search" placeholder="Filter by name…" value=${text} style="width:280px"
        onInput=${(e) => setText(e.target.value)} aria-label="filter streams by name" />
      ${(probes || probe) && html`<label class="muted">probe <input type="search" placeholder="all" value=${probe} style="width:140px"
        data-test="probe-filter" aria-label="filter streams by probe"
        onChange=${(e) => { location.hash = href(['files'], { q, probe: e.target.value || undefined }); }} /></label>`}
      <span class="muted" data-test="stream-count">${data ? `${fmtCount(data.total)} stream${data.total === 1 ? '' : 's'}` : loading ? 'Loading…' : ''}</span>
      <span class="spacer"></span>
      ${data && html`<${Pager} offset=${data.offset} limit=${PAGE} total=${data.total} onPage=${(p) => { location.hash = href(['files'], { q, page: p }); }} />`}
    </div>
    <div class="table-wrap">
      <table data-test="streams">
        <thead><tr><th>Name</th>${probes && html`<th>Probe</th>`}<th>State</th><th>Start (UTC)</th><th>End (UTC)</th><th class="num">Duration</th>
          <th class="num">Packets</th><th class="num">Size</th><th></th></tr></thead>
        <tbody>
          ${data && data.streams.map((s) => html`<tr key=${s.name}>
            <td><a class="mono" href=${href(['files', s.name])}>${s.name}</a></td>
            ${probes && html`<td class="mono" data-test="probe">${s.probe || ''}</td>`}
            <td><${State} state=${s.state} damage=${s.damage} /></td>
            ${s.state === 'damaged' ? html`<td colspan="5" class="muted" title=${s.damage}>${s.damage}</td>` : html`
            <td class="mono">${fmtTime(s.first_ns)}</td>
            <td class="mono">${fmtTime(s.last_ns)}</td>
            <td class="num">${duration(s.first_ns, s.last_ns)}</td>
            <td class="num">${fmtCount(s.packets)}</td>
            <td class="num" title=${`${fmtCount(s.bytes)} bytes`}>${fmtBytes(s.bytes)}</td>`}
            <td class="actions">${s.download && html`<${Download} url=${s.download} />`}
              <button class="small danger" onClick=${() => setDoomed(s.name)} disabled=${s.state === 'open'}
                title=${s.state === 'open' ? 'stop the capture first' : 'delete this stream'}>Delete</button></td>
          </tr>`)}
          ${data && data.streams.length === 0 && html`<tr><td colspan="8" class="muted">${q ? `No stream name contains “${q}”.` : 'No streams yet: start a capture on the Capture page, or `wirecap import`.'}</td></tr>`}
        </tbody>
      </table>
    </div>
    ${data && html`<${Pager} offset=${data.offset} limit=${PAGE} total=${data.total} onPage=${(p) => { location.hash = href(['files'], { q, page: p }); }} />`}
    ${doomed && html`<${Confirm} title="Delete stream?" confirm="Delete for good" busy=${busy}
      onConfirm=${del} onCancel=${() => setDoomed(null)}>
      <p>This removes <b class="mono">${doomed}</b> and all of its packets from disk. It cannot be undone.</p><//>`}
  </div>`;
}

/** The view to show when the URL names none: about 10 to 120 splits for this stream. */
function defaultView(info) {
  const secs = info && info.first_ns && info.last_ns ? (Number(info.last_ns) - Number(info.first_ns)) / 1e9 : 0;
  return secs < 120 ? 'split_1sec' : secs < 7200 ? 'split_1min' : secs < 4 * 86400 ? 'split_1hour' : 'split_1GB';
}

export function StreamPage({ name_: name, route }) {
  const view = route.query.view || '';
  const page = Math.max(1, Number(route.query.page || 1));
  const [info, infoError] = useLoad(() => API.stream(name), [name]);
  // Split counts per view come on their own (they cost more than the page needs first).
  const [counts] = useLoad(() => API.views(name), [name]);
  const chosen = view || (info ? defaultView(info) : '');
  const [list, listError, listLoading] = useLoad(
    () => (chosen ? API.splits(name, chosen, { offset: (page - 1) * PAGE, limit: PAGE }) : Promise.resolve(null)),
    [name, chosen, page],
  );
  useLayoutEffect(() => {
    // When the rows are in the document, in ms since navigation start (read by the browser test).
    if (list) window.__wirecapRendered = { page: 'splits', at: performance.now(), rows: list.splits.length, total: list.total };
  }, [list]);
  const go = (v, p) => { location.hash = href(['files', name], { view: v, page: p > 1 ? p : undefined }); };
  const views = counts ? counts.views : (info ? info.views.map((v) => ({ view: v, splits: null })) : []);

  return html`<div>
    <p class="muted"><a href="#/files">Files</a> ›</p>
    <h1 class="mono">${name}</h1>
    <${ErrorMsg} error=${infoError || listError} />
    ${info && html`<section class="panel">
      <div class="toolbar">
        <${State} state=${info.state} />
        <span><b>${fmtCount(info.packets)}</b> packets</span>
        <span><b>${fmtBytes(info.bytes)}</b></span>
        <span class="mono">${fmtTime(info.first_ns)} → ${fmtTime(info.last_ns)} UTC</span>
        <span class="muted">${duration(info.first_ns, info.last_ns)}</span>
        ${info.source && html`<span class="muted">source: <span class="mono">${info.source}</span></span>`}
        <span class="spacer"></span>
        <${Download} url=${info.download} label="whole stream" test="download-stream" />
        <a class="btn small" href=${href(['analysis'], { stream: name })}>Analyze…</a>
      </div>
    </section>`}
    ${route.query.start && route.query.stop && html`<section class="panel" data-test="time-window">
      <div class="toolbar">
        <span>Time window (from the Flows page): <span class="mono">${fmtTime(route.query.start)} → ${fmtTime(route.query.stop)} UTC</span></span>
        <span class="muted">${duration(route.query.start, route.query.stop)}</span>
        <span class="spacer"></span>
        <${Download} url=${API.downloadUrl.filtered(name, { start: route.query.start, stop: route.query.stop })} label="this window" test="download-window" />
      </div>
    </section>`}
    ${views.length > 0 && html`<div class="tabs" role="tablist" aria-label="views" data-test="views">
      ${views.filter((v) => v.view !== 'single').map((v) => html`<a href=${href(['files', name], { view: v.view })} role="tab"
        class=${v.view === chosen ? 'on' : ''} aria-selected=${v.view === chosen}>${v.view}${v.splits !== null && html`<span class="c">${fmtCount(v.splits)}</span>`}</a>`)}
    </div>`}
    ${list && html`<div>
      <div class="toolbar"><span class="muted" data-test="split-count">${fmtCount(list.total)} splits in ${chosen}</span><span class="spacer"></span>
        <${Pager} offset=${list.offset} limit=${PAGE} total=${list.total} onPage=${(p) => go(chosen, p)} /></div>
      <div class="table-wrap"><table data-test="splits">
        <thead><tr><th class="num">#</th><th>Name</th><th>Start (UTC)</th><th>Stop (UTC)</th><th class="num">Packets</th><th class="num">Size</th><th></th></tr></thead>
        <tbody>${list.splits.map((s) => html`<tr key=${s.index}>
          <td class="num muted">${s.index}</td>
          <td class="mono">${s.name}</td>
          <td class="mono">${fmtTime(s.start_ns)}</td>
          <td class="mono">${fmtTime(s.stop_ns)}</td>
          <td class="num">${fmtCount(s.packets)}</td>
          <td class="num" title=${`${fmtCount(s.bytes)} bytes`}>${fmtBytes(s.bytes)}</td>
          <td class="actions"><${Download} url=${s.download} /></td>
        </tr>`)}
        ${list.splits.length === 0 && html`<tr><td colspan="7" class="muted">No packets in this view yet.</td></tr>`}
        </tbody>
      </table></div>
      <${Pager} offset=${list.offset} limit=${PAGE} total=${list.total} onPage=${(p) => go(chosen, p)} />
    </div>`}
    ${listLoading && !list && html`<p class="muted">Loading splits…</p>`}
  </div>`;
}
