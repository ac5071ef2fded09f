/**
 * docs/benchmarks.md is written by the benchmark scripts, one section each between its own markers: a run replaces
 * its section and keeps everything else as it is.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const INTRO = `# Benchmarks

Measurements of shardflow against established systems, made by the scripts in \`bench/\`. Each section is written by
its script; rerun the script to refresh it (the text between its markers is replaced, the rest is kept).

`;

/**
 * Replaces the section between `start` and `end` in the docs file. Where there is none yet it goes right after the
 * `after` marker if given and present, else at the end; a missing file starts as `intro` (default: the page's intro).
 */
export async function writeDocsSection(
  path: string,
  section: string,
  markers: { start: string; end: string; after?: string },
  intro = INTRO,
): Promise<void> {
  let text = existsSync(path) ? await readFile(path, 'utf8') : intro;
  const start = text.indexOf(markers.start);
  const end = text.indexOf(markers.end);
  const after = markers.after === undefined ? -1 : text.indexOf(markers.after);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + section + text.slice(end + markers.end.length);
  } else if (after >= 0) {
    const at = after + markers.after!.length;
    text = text.slice(0, at) + '\n\n' + section + text.slice(at);
  } else {
    text = text.replace(/\s*$/, '\n\n') + section + '\n';
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}
