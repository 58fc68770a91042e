/** Every number a pass reports, with its unit and which direction is better. */
export const METRICS = {
  connect_per_s: { label: 'connections/s', unit: '/s', better: 'higher' },
  connect_cpu_us: { label: 'CPU µs/connection', unit: 'µs', better: 'lower' },
  // The load's own CPU in W4: next to 1 s / connections/s it shows whether the load was the bound.
  connect_load_cpu_us: { label: 'load CPU µs/connection', unit: 'µs', better: 'lower' },
  rss_per_connection: { label: 'RSS B/connection', unit: 'B', better: 'lower' },
  heap_per_connection: { label: 'heap B/connection', unit: 'B', better: 'lower' },
  all_per_s: { label: 'fan-out all deliveries/s', unit: '/s', better: 'higher' },
  all_cpu_us: { label: 'CPU µs/delivery (all)', unit: 'µs', better: 'lower' },
  event_per_s: { label: 'fan-out event deliveries/s', unit: '/s', better: 'higher' },
  event_cpu_us: { label: 'CPU µs/delivery (event)', unit: 'µs', better: 'lower' },
  user_per_s: { label: 'user sends deliveries/s', unit: '/s', better: 'higher' },
  user_cpu_us: { label: 'CPU µs/delivery (user)', unit: 'µs', better: 'lower' },
  ping_p50_ms: { label: 'ping p50 ms', unit: 'ms', better: 'lower' },
  ping_p99_ms: { label: 'ping p99 ms', unit: 'ms', better: 'lower' },
  ping_max_ms: { label: 'ping max ms', unit: 'ms', better: 'lower' },
  ping_cpu_us: { label: 'CPU µs/ping', unit: 'µs', better: 'lower' },
  ping_warmup_cpu_us: { label: 'CPU µs/ping (warm-up)', unit: 'µs', better: 'lower' },
  // Already ratios to raw ws (bench/load/interleaved.ts): raw ws's own value is 1.
  connect_per_s_interleaved: { label: 'connections/s, interleaved', unit: '×', better: 'higher' },
  connect_cpu_interleaved: { label: 'CPU/connection, interleaved', unit: '×', better: 'lower' },
  ping_p50_interleaved: { label: 'ping p50, interleaved', unit: '×', better: 'lower' },
  ping_cpu_interleaved: { label: 'CPU/ping, interleaved', unit: '×', better: 'lower' },
} as const;

export type MetricKey = keyof typeof METRICS;
export const METRIC_KEYS = Object.keys(METRICS) as MetricKey[];
export type Metrics = Record<MetricKey, number>;
