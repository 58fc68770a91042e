/** Runs task(0..count-1) with at most `window` of them in flight; rejects on the first failure. */
export async function windowed(
  count: number,
  window: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
}
