/**
 * docs/bench.svg: for each C, horizontal bars of every target's ratio to raw-ws on the rate
 * workloads (higher is better), with a line at 1. Hand-written SVG: no charting dependency.
 */
import { METRICS, type MetricKey } from '../load/metrics.js';
import type { Environment } from './environment.js';
import { formatNumber } from './table.js';
import type { Row } from './summary.js';

const CHARTED: MetricKey[] = ['connect_per_s', 'all_per_s', 'event_per_s', 'user_per_s'];
const COLORS = ['#6b7280', '#2563eb', '#d97706', '#059669', '#9333ea'];
const WIDTH = 860;
const LABEL = 190; // left column: metric names
const BAR_AREA = 520;
const BAR = 14;
const GAP = 4;

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function chart(rows: Row[], targets: readonly string[], env: Environment): string {
  const sizes = [...new Set(rows.map((r) => r.clients))];
  const ratios = rows.flatMap((r) => CHARTED.map((k) => r.cells[k].ratio)).filter(Number.isFinite);
  const scale = Math.max(1.2, ...ratios);
  const x = (ratio: number) => LABEL + (BAR_AREA * ratio) / scale;
  const parts: string[] = [];
  let y = 58;
  // Legend.
  targets.forEach((target, i) => {
    const lx = LABEL + i * 130;
    parts.push(
      `<rect x="${lx}" y="${y - 11}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${lx + 16}" y="${y}">${escape(target)}</text>`,
    );
  });
  y += 16;
  for (const clients of sizes) {
    y += 22;
    parts.push(`<text x="10" y="${y}" font-weight="bold">C = ${clients}</text>`);
    y += 8;
    for (const key of CHARTED) {
      const top = y;
      parts.push(`<text x="10" y="${top + BAR + 2}">${escape(METRICS[key].label)}</text>`);
      targets.forEach((target) => {
        const row = rows.find((r) => r.clients === clients && r.target === target);
        const cell = row?.cells[key];
        const color = COLORS[targets.indexOf(target) % COLORS.length];
        if (cell && Number.isFinite(cell.ratio)) {
          const width = Math.max(1, x(cell.ratio) - LABEL);
          parts.push(
            `<rect x="${LABEL}" y="${y}" width="${width.toFixed(1)}" height="${BAR}" fill="${color}"/>`,
            `<text x="${(LABEL + width + 4).toFixed(1)}" y="${y + BAR - 3}">×${cell.ratio.toFixed(2)} (${formatNumber(cell.median)}${escape(METRICS[key].unit)})</text>`,
          );
        } else {
          const why = row ? 'failed' : 'not run';
          parts.push(`<text x="${LABEL + 4}" y="${y + BAR - 3}" fill="#b91c1c">${why}</text>`);
        }
        y += BAR + GAP;
      });
      parts.push(
        `<line x1="${x(1)}" y1="${top - 2}" x2="${x(1)}" y2="${y}" stroke="#111" stroke-dasharray="3 2"/>`,
      );
      y += 10;
    }
  }
  const height = y + 30;
  const note = `${env.cpu} × ${env.cores} cores, Node ${env.node}, ws ${env.ws}, socket.io ${env.socketio}, NestJS ${env.nest}, ${env.date.slice(0, 16)}Z`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Throughput relative to raw ws (same run; higher is better; dashed line = raw ws)</text>`,
    `<text x="10" y="40" fill="#555">${escape(note)}</text>`,
    ...parts,
    `<text x="10" y="${height - 10}" fill="#555">Medians over runs; see bench/README.md for CPU, memory and latency, and for reading noisy numbers.</text>`,
    '</svg>',
    '',
  ].join('\n');
}
