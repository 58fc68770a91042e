/** Medians over runs, and each target's ratio to raw-ws taken within a run, then the median. */
import type { Pass } from '../load/workloads.js';
import { METRIC_KEYS, type MetricKey } from '../load/metrics.js';
import { median, round } from '../lib/stats.js';

export const BASELINE = 'raw-ws';

export interface Cell {
  median: number;
  runs: number[];
  /** Median over runs of (this target / raw-ws in the same run and C); NaN when not measurable. */
  ratio: number;
}

export interface Row {
  clients: number;
  target: string;
  cells: Record<MetricKey, Cell>;
  /** Runs in which a workload lost, duplicated or misrouted messages, or the pass broke off. */
  failures: string[];
  /** Highest CPU of the load process in any measured window, % of one core: near 100, the
   * rates are the load's ceiling, not the server's. */
  load_cpu_percent_max: number;
  /** Highest CPU of other processes in any measured window, % of one core. */
  other_cpu_percent_max: number;
}

export function summarize(passes: Pass[], targets: readonly string[]): Row[] {
  const sizes = [...new Set(passes.map((p) => p.clients))];
  return sizes.flatMap((clients) =>
    targets
      .map((target) => {
        const own = passes.filter((p) => p.clients === clients && p.target === target);
        const baseline = (run: number) =>
          passes.find((p) => p.clients === clients && p.target === BASELINE && p.run === run);
        const cells = Object.fromEntries(
          METRIC_KEYS.map((key) => {
            const runs = own.map((p) => p.metrics[key]);
            const ratios = own.map((p) => p.metrics[key] / (baseline(p.run)?.metrics[key] ?? NaN));
            return [key, { median: median(runs), runs, ratio: round(median(ratios), 3) }];
          }),
        ) as Record<MetricKey, Cell>;
        const failures = own.flatMap((p) => [
          ...(p.error ? [`run ${p.run}: ${p.error}`] : []),
          ...Object.entries(p.deliveries)
            .filter(([, d]) => d.failed)
            .map(
              ([name, d]) =>
                `run ${p.run} ${name}: delivered ${d.delivered}/${d.expected}, duplicates ${d.duplicates}, stray ${d.stray}`,
            ),
        ]);
        return {
          clients,
          target,
          cells,
          failures,
          load_cpu_percent_max: Math.max(0, ...own.map((p) => p.load_cpu_percent)),
          other_cpu_percent_max: Math.max(0, ...own.map((p) => p.other_cpu_percent)),
        };
      })
      .filter((row) => passes.some((p) => p.clients === clients && p.target === row.target)),
  );
}
