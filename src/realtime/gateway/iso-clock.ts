/** The last millisecond formatted, and when: a burst of replies formats the time once. */
let lastMs = Number.NaN;
let lastIso = '';

/** `new Date().toISOString()`, formatted at most once per millisecond. */
export function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
