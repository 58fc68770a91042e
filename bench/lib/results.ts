/** Where every benchmark script writes its JSON: bench/results/ (gitignored). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { ROOT } from './demo-server.js';

/** Writes `payload` as bench/results/<kind>-<ISO date to the second>Z.json; returns its path. */
export function writeResults(kind: string, isoDate: string, payload: object): string {
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  const file = `${ROOT}bench/results/${kind}-${isoDate.slice(0, 19).replace(/:/g, '-')}Z.json`;
  writeFileSync(file, `${JSON.stringify(payload, null, 2)}\n`);
  return file;
}
