/**
 * The latency chart of `npm run bench:pipeline`, as a small hand-written SVG: for each row (engine, mode, trigger),
 * one bar per pipeline depth for p50 and a thin mark for p99, on a log scale of milliseconds.
 */
export interface ChartRow {
  label: string;
  /** depth -> { p50Ms, p99Ms } */
  byDepth: Map<number, { p50Ms: number; p99Ms: number }>;
}

const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function latencyChart(rows: ChartRow[], depths: number[], title: string, targetMs: number | undefined): string {
  const left = 190;
  const right = 30;
  const top = 74;
  const rowH = 16 * depths.length + 14;
  const width = 860;
  const plotW = width - left - right;
  const height = top + rows.length * rowH + 60;
  const values = rows.flatMap((r) => [...r.byDepth.values()].flatMap((v) => [v.p50Ms, v.p99Ms])).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...values, targetMs ?? Infinity))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, targetMs ?? 0, lo * 10)));
  const x = (ms: number) => left + (Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  // legend
  depths.forEach((d, i) => {
    const lx = 10 + i * 260;
    out.push(`<rect x="${lx}" y="32" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="41">${d} keyed stage${d === 1 ? '' : 's'}: p50 bar, p99 tick</text>`);
  });
  out.push(`<line x1="${10 + depths.length * 260}" y1="37" x2="${10 + depths.length * 260 + 14}" y2="37" stroke="black" stroke-width="0.8"/><text x="${10 + depths.length * 260 + 18}" y="41">p50 → p99</text>`);
  // grid
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    const gx = x(v);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${height - 40}" stroke="#ddd"/>`);
    out.push(`<text x="${gx}" y="${height - 26}" text-anchor="middle">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 8}" text-anchor="middle">end-to-end latency at half the row's maximum load (log scale)</text>`);
  if (targetMs !== undefined) {
    const tx = x(targetMs);
    out.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 40}" stroke="#e45756" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${tx + 3}" y="${top - 8}" fill="#e45756">stream p99 target ${targetMs} ms</text>`);
  }
  rows.forEach((r, ri) => {
    const y0 = top + ri * rowH;
    out.push(`<text x="${left - 8}" y="${y0 + rowH / 2 + 2}" text-anchor="end">${esc(r.label)}</text>`);
    depths.forEach((d, di) => {
      const v = r.byDepth.get(d);
      if (!v) return;
      const y = y0 + 6 + di * 16;
      const color = COLORS[di % COLORS.length];
      out.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(v.p50Ms) - left).toFixed(1)}" height="12" fill="${color}"><title>${esc(`${r.label}, depth ${d}: p50 ${v.p50Ms.toFixed(2)} ms`)}</title></rect>`);
      const px = x(v.p99Ms);
      out.push(`<line x1="${px.toFixed(1)}" y1="${y - 1}" x2="${px.toFixed(1)}" y2="${y + 13}" stroke="black" stroke-width="2"><title>${esc(`${r.label}, depth ${d}: p99 ${v.p99Ms.toFixed(2)} ms`)}</title></line>`);
      out.push(`<line x1="${x(v.p50Ms).toFixed(1)}" y1="${y + 6}" x2="${px.toFixed(1)}" y2="${y + 6}" stroke="black" stroke-width="0.8"/>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
