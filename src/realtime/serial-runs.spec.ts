import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SerialRuns } from './serial-runs.js';

/** A task whose runs each wait for `finish()`; records what each run saw. */
function gatedTask() {
  const seen: boolean[] = [];
  let finish = (): void => undefined;
  let started = 0;
  const runs: SerialRuns = new SerialRuns(async () => {
    started++;
    await new Promise<void>((resolve) => (finish = resolve));
    seen.push(runs.askedAgain);
  });
  return { runs, seen, started: () => started, finish: () => finish() };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('SerialRuns', () => {
  it('runs once when asked once', async () => {
    const task = gatedTask();
    task.runs.request();
    await turn();
    task.finish();
    await turn();
    assert.equal(task.started(), 1);
    assert.deepEqual(task.seen, [false]);
  });

  it('asked several times during a run, runs exactly once more after it, never two at once', async () => {
    const task = gatedTask();
    task.runs.request();
    await turn();
    task.runs.request();
    task.runs.request();
    task.runs.request();
    assert.equal(task.started(), 1, 'not while the first runs');
    task.finish();
    await turn();
    assert.equal(task.started(), 2);
    task.finish();
    await turn();
    assert.equal(task.started(), 2, 'the requests meanwhile made one run');
    assert.deepEqual(task.seen, [true, false], 'askedAgain during the first run only');
  });

  it('runs again when asked after the last run ended', async () => {
    const task = gatedTask();
    task.runs.request();
    await turn();
    task.finish();
    await turn();
    task.runs.request();
    await turn();
    task.finish();
    await turn();
    assert.equal(task.started(), 2);
  });
});
