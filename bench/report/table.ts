/** The Markdown report: a header with the machine and versions, then two tables per C. */
import { METRICS, type MetricKey } from '../load/metrics.js';
import type { Environment } from './environment.js';
import { BASELINE, type Row } from './summary.js';

const RATES: MetricKey[] = [
  'connect_per_s',
  'connect_per_s_interleaved',
  'all_per_s',
  'event_per_s',
  'user_per_s',
  'ping_p50_ms',
  'ping_p99_ms',
  'ping_max_ms',
  'ping_p50_interleaved',
];
const COSTS: MetricKey[] = [
  'connect_cpu_us',
  'connect_cpu_interleaved',
  'connect_load_cpu_us',
  'all_cpu_us',
  'event_cpu_us',
  'user_cpu_us',
  'ping_cpu_us',
  'ping_warmup_cpu_us',
  'ping_cpu_interleaved',
  'rss_per_connection',
  'heap_per_connection',
];

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString('en-US');
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function cell(row: Row, key: MetricKey): string {
  const { median, ratio } = row.cells[key];
  // A ratio already, measured for the module only (bench/load/interleaved.ts).
  if (METRICS[key].unit === '×') return Number.isFinite(median) ? `×${median.toFixed(2)}` : '—';
  if (!Number.isFinite(median)) return 'failed';
  return row.target === BASELINE || !Number.isFinite(ratio)
    ? formatNumber(median)
    : `${formatNumber(median)} (×${ratio.toFixed(2)})`;
}

function table(rows: Row[], keys: MetricKey[], cpu: boolean): string[] {
  const extra = cpu ? ' load CPU % (max) | other processes CPU % (max) |' : '';
  return [
    `| target | ${keys.map((k) => METRICS[k].label).join(' | ')} |${extra}`,
    `| --- | ${keys.map(() => '--:').join(' | ')} |${cpu ? ' --: | --: |' : ''}`,
    ...rows.map(
      (row) =>
        `| ${row.target} | ${keys.map((k) => cell(row, k)).join(' | ')} |` +
        (cpu ? ` ${row.load_cpu_percent_max} | ${row.other_cpu_percent_max} |` : ''),
    ),
  ];
}

export function report(rows: Row[], env: Environment, runs: number, skipped: string[]): string {
  const lines = [
    `## Side-by-side benchmark, ${env.date}`,
    '',
    `${env.cpu} × ${env.cores} cores; Node ${env.node}, ws ${env.ws}, socket.io ${env.socketio}, ` +
      `NestJS ${env.nest}; ${env.pinned ? 'servers on core 1, load on core 0' : 'not pinned'}; ` +
      `median of ${runs} run(s); (×r) = ratio to raw-ws in the same run, median over runs.`,
  ];
  for (const clients of [...new Set(rows.map((r) => r.clients))]) {
    const group = rows.filter((r) => r.clients === clients);
    lines.push(
      '',
      `### C = ${clients}`,
      '',
      ...table(group, RATES, true),
      '',
      ...table(group, COSTS, false),
    );
    for (const row of group)
      for (const failure of row.failures) lines.push('', `FAILED ${row.target}: ${failure}`);
  }
  if (skipped.length > 0) lines.push('', `Not run (out of time): ${skipped.join('; ')}`);
  return lines.join('\n');
}
