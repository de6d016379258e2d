// Shared pieces: the `html` template tag, number and time formats, small components.
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

// ---------- formats (decimal units, as the store counts them: 1 MB = 10^6 bytes) ----------
const units = (n, unit, base = 1000, prefixes = ['', 'k', 'M', 'G', 'T', 'P']) => {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= base && i < prefixes.length - 1) { v /= base; i++; }
  const digits = i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${prefixes[i]}${unit}`;
};
export const fmtBytes = (n) => units(n, 'B');
export const fmtBits = (n) => units(n, 'b/s');
export const fmtPps = (n) => units(n, 'p/s');
// Thousands separators by hand: Intl (toLocaleString) costs tens of ms to set up and
// more per call than the rest of a 100-row table's rendering.
export const fmtCount = (n) => {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–';
  const s = String(Math.trunc(Number(n)));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
};
export const fmtSpeed = (mbps) => (!mbps ? 'unknown' : mbps >= 1000 ? `${mbps / 1000} Gb/s` : `${mbps} Mb/s`);

/** ns since the epoch (number or decimal string) → "2025-01-01 09:00:05.250" UTC. */
export function fmtTime(ns, withMs = true) {
  if (ns === null || ns === undefined || ns === '') return '–';
  const ms = typeof ns === 'string' ? Number(ns.slice(0, -6) || 0) : Math.floor(ns / 1e6);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, withMs ? 23 : 19)}`;
}
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const p = (x) => String(x).padStart(2, '0');
  if (d) return `${d}d ${p(hh)}h ${p(mm)}m`;
  if (hh) return `${hh}h ${p(mm)}m ${p(s)}s`;
  if (mm) return `${mm}m ${p(s)}s`;
  return `${s}s`;
}
export const nsToSec = (ns) => (ns === null || ns === undefined ? null : Number(ns) / 1e9);
export function ago(ns) {
  if (ns === null || ns === undefined) return '';
  const s = Date.now() / 1000 - nsToSec(ns);
  return s < 0 ? 'in the future' : `${fmtDuration(s)} ago`;
}

// ---------- hooks ----------
/** Calls `f` now and every `ms` while the tab is visible; `deps` restart it. */
export function usePoll(f, ms, deps = []) {
  const saved = useRef(f);
  saved.current = f;
  useEffect(() => {
    let timer = null;
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      if (!document.hidden) { try { await saved.current(); } catch { /* shown by the caller */ } }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }, deps);
}

/** Loads `f()` when `deps` change: [data, error, loading, reload]. */
export function useLoad(f, deps = []) {
  const [state, set] = useState({ data: null, error: null, loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    set((s) => ({ ...s, loading: true }));
    f().then((data) => live && set({ data, error: null, loading: false }),
      (error) => live && set({ data: null, error, loading: false }));
    return () => { live = false; };
  }, [...deps, n]);
  return [state.data, state.error, state.loading, () => setN((x) => x + 1)];
}

// ---------- components ----------
export const Stat = ({ k, v, s, cls = '', title }) => html`
  <div class="stat ${cls}" title=${title}><div class="k">${k}</div><div class="v">${v}</div>${s && html`<div class="s">${s}</div>`}</div>`;

/** A filter field's text with a caret under the column where the mistake starts. */
export const Caret = ({ value, err }) => (err
  ? html`<div class="inline-error" role="alert" data-test="filter-error">${`${value}\n${' '.repeat(err.column)}^ ${err.message}`}</div>`
  : null);

export const ErrorMsg = ({ error }) => (error ? html`<div class="msg error" role="alert">${String(error.message || error)}</div>` : null);

export const Coming = ({ title, children, issue }) => html`
  <section class="coming">
    <h2>${title} <span class="tag">coming${issue ? ` with issue ${issue}` : ''}</span></h2>
    <div class="muted">${children}</div>
  </section>`;

/** Page controls for a server-paginated list. */
export function Pager({ offset, limit, total, onPage }) {
  if (total <= limit && offset === 0) return null;
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  const go = (p) => onPage(Math.min(Math.max(p, 1), pages));
  return html`<div class="pager">
    <span class="muted">${fmtCount(offset + 1)}–${fmtCount(Math.min(offset + limit, total))} of ${fmtCount(total)}</span>
    <button class="small" disabled=${page <= 1} onClick=${() => go(1)} aria-label="first page">«</button>
    <button class="small" disabled=${page <= 1} onClick=${() => go(page - 1)} aria-label="previous page">‹ Prev</button>
    <span>page ${page} / ${pages}</span>
    <button class="small" disabled=${page >= pages} onClick=${() => go(page + 1)} aria-label="next page">Next ›</button>
    <button class="small" disabled=${page >= pages} onClick=${() => go(pages)} aria-label="last page">»</button>
  </div>`;
}

export function Confirm({ title, children, confirm, onConfirm, onCancel, busy }) {
  useEffect(() => {
    const k = (e) => e.key === 'Escape' && onCancel();
    addEventListener('keydown', k);
    return () => removeEventListener('keydown', k);
  }, []);
  return html`<div class="modal-back" onClick=${(e) => e.target === e.currentTarget && onCancel()}>
    <div class="modal" role="dialog" aria-modal="true" aria-label=${title}>
      <h2>${title}</h2>
      <div>${children}</div>
      <div class="row">
        <button onClick=${onCancel}>Cancel</button>
        <button class="danger solid" disabled=${busy} onClick=${onConfirm}>${confirm}</button>
      </div>
    </div>
  </div>`;
}

/** Hash routing: "#/files/NAME?view=split_1sec&page=2" → { parts: ['files','NAME'], query }. */
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: Object.fromEntries(new URLSearchParams(qs || '')) };
}
export function href(parts, query = {}) {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}
