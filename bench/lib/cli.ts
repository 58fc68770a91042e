/** `--name N` from the command line as a positive integer, or `fallback` when absent. */
export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
  return value;
}

export const quick = process.argv.includes('--quick');
