/**
 * Summarizes V8 .cpuprofile files (from `node --cpu-prof` or `bench:kv --cpu-prof-dir`): the functions with the most
 * self time, and the most inclusive time, as shares of the busy (non-idle) time.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile... [--top 25] [--windows DIR/windows.json [--match TEXT]]
 *
 * With --windows, only samples taken inside the measured windows bench:kv recorded count (optionally only the windows
 * whose label contains TEXT, e.g. "shardflow get c=64"), so start-up, prefill and shutdown drop out.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  let where = f.url.replace(/^file:\/\//, '');
  if (where.startsWith('/')) where = relative(process.cwd(), where);
  where = where.replace(/^node_modules\//, '~');
  return `${name} ${where}:${f.lineNumber + 1}`;
}

interface Window {
  label: string;
  startUs: number;
  endUs: number;
}

function summarize(file: string, top: number, windows: Window[] | undefined): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per sample: the delta to the next sample (the last one gets the mean).
  const self = new Map<number, number>();
  const inWindow = (t: number) => !windows || windows.some((w) => t >= w.startUs && t < w.endUs);
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (!inWindow(t)) continue;
    const dt = (p.timeDeltas[i + 1] ?? (p.endTime - p.startTime) / p.samples.length) / 1000;
    total += dt;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const selfByLabel = new Map<string, number>();
  const inclByLabel = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    selfByLabel.set(label(n), (selfByLabel.get(label(n)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue; // recursion: count once
      seen.add(l);
      inclByLabel.set(l, (inclByLabel.get(l) ?? 0) + ms);
    }
  }
  const idle = selfByLabel.get('(idle)') ?? 0;
  const busy = total - idle;
  const fmt = (entries: [string, number][]) =>
    entries
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([l, ms]) => `  ${ms.toFixed(0).padStart(7)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${l}`)
      .join('\n');
  return [
    `${file}: ${total.toFixed(0)} ms profiled, ${idle.toFixed(0)} ms idle, ${busy.toFixed(0)} ms busy (percentages of busy)`,
    'self time:',
    fmt([...selfByLabel].filter(([l]) => l !== '(idle)')),
    'inclusive time:',
    fmt([...inclByLabel].filter(([l]) => l !== '(idle)' && l !== '(root)')),
  ].join('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string' }, windows: { type: 'string' }, match: { type: 'string' } },
});
const top = Number(values.top ?? 25);
const windows = values.windows
  ? (JSON.parse(readFileSync(values.windows, 'utf8')) as Window[]).filter((w) => !values.match || w.label.includes(values.match))
  : undefined;
if (windows?.length === 0) throw new Error(`no window in ${values.windows} matches ${values.match}`);
for (const file of positionals) process.stdout.write(summarize(file, top, windows) + '\n\n');
