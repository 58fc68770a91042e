/** `--name N` from the command line as a positive integer, or `fallback` when absent. */
export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
  return value;
}

export const quick = process.argv.includes('--quick');

/** `--name a,b,c` from the command line as a list, or `fallback` when absent. */
export function listOption(name: string, fallback: string[]): string[] {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : (process.argv[at + 1] ?? '').split(',').filter(Boolean);
}
