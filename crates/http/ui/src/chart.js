// A uPlot time chart as a Preact component: created once, fed new data with setData,
// resized with its container.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.js';

/**
 * `data` is uPlot's columnar form: [[unix seconds…], [series 1…], …].
 * `series` gives each value series a label, a colour and a value formatter.
 */
export function TimeChart({ data, series, height = 220, yFormat, title }) {
  const box = useRef(null);
  const plot = useRef(null);
  const key = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(300, el.clientWidth),
      height,
      title,
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
      axes: [
        { stroke: '#5f6b7a', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#dde3ea' } },
        { stroke: '#5f6b7a', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#dde3ea' }, size: 84,
          values: (u, vals) => vals.map((v) => (yFormat ? yFormat(v) : v)) },
      ],
      series: [
        { value: (u, v) => (v == null ? '–' : new Date(v * 1000).toISOString().slice(11, 19) + ' UTC') },
        ...series.map((s) => ({
          label: s.label, stroke: s.color, width: 1.5, fill: s.fill,
          points: { show: false },
          value: (u, v) => (v == null ? '–' : s.format ? s.format(v) : v),
        })),
      ],
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: Math.max(300, el.clientWidth), height }));
    ro.observe(el);
    return () => { ro.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [key, height]);

  useEffect(() => { if (plot.current) plot.current.setData(data); }, [data]);

  return html`<div class="chart" ref=${box}></div>`;
}
