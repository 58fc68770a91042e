/**
 * Runs `task` for 0..count-1 with at most `concurrency` in flight, keeping results in index
 * order: opening hundreds of connections at once would measure the accept queue, not the server.
 */
export async function mapBounded<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
