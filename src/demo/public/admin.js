// The live admin dashboard: vanilla JS plus the project's own client SDK, loaded as native ES
// modules from /sdk/. Everything the server sends is written with textContent, never as HTML.
// The token is kept in memory only and never put in a URL.

import { RealtimeClient } from '/sdk/client/index.js';

const REFRESH_MS = 1000;
/** Bound on each admin API request. */
const REQUEST_TIMEOUT_MS = 5000;
/** After a 429 or a network failure, wait this long before asking again. */
const BACKOFF_MS = 5000;
/** Rows of the connections table (one page of GET /ws/connections). */
const CONNECTION_LIMIT = 100;
/** GET /ws/connections/:id per refresh, for the bytes column (round robin over the rows). */
const DETAILS_PER_TICK = 4;
const RECEIVED_LIMIT = 50;
const LIST_LIMIT = 50;
/** Control messages of the client's own session, not worth listing as received. */
const QUIET_TYPES = new Set([
  'pong',
  'heartbeat',
  'ping',
  'connection.established',
  'subscription.acknowledged',
  'unsubscription.acknowledged',
]);

const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
};

const state = {
  token: null,
  /** Bumped on every new token: answers for an older token are dropped. */
  generation: 0,
  timer: null,
  client: null,
  ownConnectionId: null,
  /** Last counters seen, for the per-second rates. */
  previous: null,
  /** connection_id -> { bytes_in, bytes_out } from GET /ws/connections/:id. */
  bytes: new Map(),
  detailsCursor: 0,
  rows: [],
  receivedCount: 0,
};

const wsUrl = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/ws`;

// ---------------------------------------------------------------- helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function setStatus(id, text, tone = '') {
  const node = $(id);
  node.textContent = text;
  node.dataset.tone = tone;
}

function clock(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

const number = new Intl.NumberFormat('en');

function formatBytes(value) {
  if (typeof value !== 'number') return '…';
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** "3 s ago", "4 min ago", "2 h ago" for an ISO time; the raw value when it is not a date. */
function ago(iso) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return String(iso);
  const seconds = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
}

function shortId(id) {
  const text = String(id ?? '');
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A call to the admin API; resolves to `data`, throws ApiError with the server's message. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new ApiError(
      0,
      `network: ${error && error.name === 'TimeoutError' ? 'timeout' : 'failed'}`,
    );
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const message = payload && payload.error && payload.error.message;
    throw new ApiError(
      response.status,
      typeof message === 'string' ? message : `HTTP ${response.status}`,
    );
  }
  return payload ? payload.data : null;
}

// ---------------------------------------------------------------- token

async function useToken(token, label) {
  state.token = token;
  state.generation += 1;
  state.previous = null;
  state.bytes.clear();
  setStatus('auth-status', `Checking ${label}…`);
  try {
    await api('GET', '/ws/stats');
  } catch (error) {
    const hint =
      error.status === 401
        ? 'the token is invalid or expired'
        : error.status === 403
          ? 'the token has no admin claim'
          : error.message;
    setStatus('auth-status', `Refused: ${hint}.`, 'error');
    stopPolling();
    return;
  }
  setStatus('auth-status', `Signed in with ${label}.`, 'ok');
  document.body.dataset.auth = 'ok';
  $('bc-send').disabled = false;
  startPolling();
  connectClient();
}

$('paste-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  if (!token) return;
  $('token-input').value = '';
  void useToken(token, 'the pasted token');
});

$('dev-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const userId = $('dev-user-id').value.trim();
  setStatus('auth-status', 'Asking for a development token…');
  try {
    const response = await fetch('/demo/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId, admin: true }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status === 404) {
      setStatus('auth-status', 'No development tokens here (production): paste one.', 'error');
      return;
    }
    const body = await response.json();
    if (!response.ok || !body || !body.data || typeof body.data.token !== 'string') {
      // The demo's own error shape: a 429 says when to retry, a 400 what is wrong.
      const message = body && Array.isArray(body.message) ? body.message.join('; ') : body?.message;
      const why = typeof message === 'string' ? message : `HTTP ${response.status}`;
      setStatus('auth-status', `Refused: ${why}.`, 'error');
      return;
    }
    await useToken(body.data.token, `a dev token for ${userId}`);
  } catch {
    setStatus('auth-status', 'Could not reach the server.', 'error');
  }
});

// ---------------------------------------------------------------- polling

function stopPolling() {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  $('bc-send').disabled = true;
  document.body.dataset.auth = 'none';
  pollStatus('not polling', 'idle');
}

function startPolling() {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  void tick(state.generation);
}

function pollStatus(text, tone) {
  const node = $('poll-status');
  node.textContent = text;
  node.dataset.state = tone;
}

/** One refresh; the next one is scheduled only when this one is over, so they never pile up. */
async function tick(generation) {
  let delay = REFRESH_MS;
  try {
    const filter = $('conn-filter').value.trim();
    const query = new URLSearchParams({ limit: String(CONNECTION_LIMIT) });
    if (filter) query.set('user_id', filter);
    const [stats, list] = await Promise.all([
      api('GET', '/ws/stats'),
      api('GET', `/ws/connections?${query}`),
    ]);
    if (generation !== state.generation) return;
    renderStats(stats);
    state.rows = Array.isArray(list && list.connections) ? list.connections : [];
    renderConnections(state.rows, typeof list.total === 'number' ? list.total : state.rows.length);
    await refreshBytes(generation);
    if (generation !== state.generation) return;
    pollStatus(`live · ${clock()}`, 'ok');
    document.body.dataset.ready = 'true';
  } catch (error) {
    if (generation !== state.generation) return;
    if (error.status === 401 || error.status === 403) {
      setStatus('auth-status', `Signed out: ${error.message}.`, 'error');
      stopPolling();
      return;
    }
    delay = error.status === 429 || error.status === 0 ? BACKOFF_MS : REFRESH_MS;
    pollStatus(`${error.status === 429 ? 'rate limited' : error.message}; retrying`, 'warn');
  }
  if (generation === state.generation) {
    state.timer = setTimeout(() => void tick(generation), delay);
  }
}

/** Bytes are only in a connection's details: ask for a few rows per refresh, in turn. */
async function refreshBytes(generation) {
  const ids = state.rows.map((row) => row.connection_id);
  for (const id of [...state.bytes.keys()]) if (!ids.includes(id)) state.bytes.delete(id);
  if (ids.length === 0) return;
  const picked = [];
  for (let i = 0; i < Math.min(DETAILS_PER_TICK, ids.length); i += 1) {
    picked.push(ids[(state.detailsCursor + i) % ids.length]);
  }
  state.detailsCursor = (state.detailsCursor + picked.length) % ids.length;
  const answers = await Promise.allSettled(
    picked.map((id) => api('GET', `/ws/connections/${encodeURIComponent(id)}`)),
  );
  if (generation !== state.generation) return;
  answers.forEach((answer, index) => {
    if (answer.status === 'fulfilled' && answer.value) {
      state.bytes.set(picked[index], {
        bytes_in: answer.value.bytes_in,
        bytes_out: answer.value.bytes_out,
      });
    }
  });
  for (const row of $('connections').querySelectorAll('tr[data-connection-id]')) {
    const bytes = state.bytes.get(row.dataset.connectionId);
    const cell = row.querySelector('[data-col="bytes"]');
    if (cell) cell.textContent = bytesText(bytes);
  }
}

function bytesText(bytes) {
  return bytes ? `${formatBytes(bytes.bytes_in)} / ${formatBytes(bytes.bytes_out)}` : '…';
}

// ---------------------------------------------------------------- rendering

function rate(now, previous, key) {
  if (!previous) return '—';
  const seconds = (now.at - previous.at) / 1000;
  const delta = now[key] - previous[key];
  if (seconds <= 0 || delta < 0) return '0';
  return (delta / seconds).toFixed(delta / seconds < 10 ? 1 : 0);
}

function renderStats(stats) {
  const now = {
    at: window.performance.now(),
    messages_in: Number(stats.messages_in) || 0,
    messages_out: Number(stats.messages_out) || 0,
  };
  $('m-connections').textContent = number.format(Number(stats.total_connections) || 0);
  $('m-users').textContent = number.format(Number(stats.unique_users) || 0);
  $('m-in-rate').textContent = rate(now, state.previous, 'messages_in');
  $('m-out-rate').textContent = rate(now, state.previous, 'messages_out');
  state.previous = now;
  setStatus(
    'm-updated',
    `${number.format(now.messages_in)} in, ${number.format(now.messages_out)} out since start · ${clock()}`,
  );

  const instances = Array.isArray(stats.instances) ? stats.instances : [];
  const body = $('instances');
  const rows = instances.slice(0, LIST_LIMIT).map((instance) => {
    const tr = el('tr');
    tr.dataset.testid = 'instance-row';
    const id = el('td', 'mono', shortId(instance.instance_id));
    id.title = String(instance.instance_id ?? '');
    tr.append(
      id,
      el('td', 'num', number.format(Number(instance.total_connections) || 0)),
      el('td', 'num', number.format(Number(instance.unique_users) || 0)),
      el('td', 'num', number.format(Number(instance.messages_in) || 0)),
      el('td', 'num', number.format(Number(instance.messages_out) || 0)),
    );
    return tr;
  });
  if (rows.length === 0) {
    const tr = el('tr', 'empty-row');
    const td = el('td', 'muted', 'this instance only');
    td.colSpan = 5;
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  const unreachable = Array.isArray(stats.unreachable_instances) ? stats.unreachable_instances : [];
  setStatus(
    'unreachable',
    [
      stats.degraded ? 'Redis unreachable: local data only.' : '',
      unreachable.length ? `Not answering: ${unreachable.map(shortId).join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' '),
    'error',
  );

  renderCounts('subscriptions', stats.subscriptions, (name) => !name.startsWith('room:'));
  renderCounts('rooms', stats.rooms, () => true);
}

function renderCounts(id, counts, keep) {
  const entries = Object.entries(counts && typeof counts === 'object' ? counts : {})
    .filter(([name]) => keep(name))
    .sort((a, b) => Number(b[1]) - Number(a[1]) || a[0].localeCompare(b[0]));
  const items = entries.slice(0, LIST_LIMIT).map(([name, count]) => {
    const li = el('li');
    li.dataset.name = name;
    li.append(
      el('span', 'mono name', name),
      el('span', 'count', number.format(Number(count) || 0)),
    );
    return li;
  });
  if (entries.length > LIST_LIMIT)
    items.push(el('li', 'muted', `and ${entries.length - LIST_LIMIT} more`));
  if (items.length === 0) items.push(el('li', 'muted', 'none'));
  $(id).replaceChildren(...items);
}

function renderConnections(rows, total) {
  $('connections-count').textContent = number.format(total);
  const trs = rows.map((row) => {
    const tr = el('tr');
    tr.dataset.testid = 'connection-row';
    tr.dataset.connectionId = String(row.connection_id);
    tr.dataset.userId = String(row.user_id);
    const own = row.connection_id === state.ownConnectionId;
    if (own) tr.classList.add('own');
    const user = el('td', 'user');
    const name = el('span', 'mono', row.user_id);
    name.title = String(row.user_id);
    user.append(name);
    if (own) user.append(el('span', 'tag', 'this dashboard'));
    user.title = String(row.connection_id);
    const connected = el('td', '', ago(row.connected_at));
    connected.title = String(row.connected_at);
    const active = el('td', '', ago(row.last_activity));
    active.title = String(row.last_activity);
    const instance = el('td', 'mono', shortId(row.instance_id ?? '—'));
    instance.title = String(row.instance_id ?? '');
    const bytes = el('td', 'num', bytesText(state.bytes.get(row.connection_id)));
    bytes.dataset.col = 'bytes';
    const actions = el('td', 'actions');
    const button = el('button', 'danger small-button', 'Disconnect');
    button.type = 'button';
    button.dataset.testid = 'disconnect';
    button.addEventListener('click', () => void disconnect(row, button));
    actions.append(button);
    tr.append(
      user,
      el('td', 'mono', row.remote_address ?? '—'),
      instance,
      connected,
      active,
      el('td', 'num', number.format(Number(row.subscriptions) || 0)),
      el('td', 'num', number.format(Number(row.rooms) || 0)),
      bytes,
      actions,
    );
    return tr;
  });
  if (trs.length === 0) {
    const tr = el('tr', 'empty-row');
    const td = el('td', 'muted', 'No connections.');
    td.colSpan = 9;
    tr.append(td);
    trs.push(tr);
  }
  if (total > rows.length) {
    const tr = el('tr', 'empty-row');
    const td = el('td', 'muted', `Showing the first ${rows.length} of ${total}; filter by user.`);
    td.colSpan = 9;
    tr.append(td);
    trs.push(tr);
  }
  $('connections').replaceChildren(...trs);
}

async function disconnect(row, button) {
  button.disabled = true;
  try {
    await api('DELETE', `/ws/connections/${encodeURIComponent(row.connection_id)}`);
    setStatus(
      'conn-status',
      `Disconnected ${row.user_id} (${shortId(row.connection_id)}), code 4004.`,
      'ok',
    );
  } catch (error) {
    button.disabled = false;
    setStatus('conn-status', `Could not disconnect ${row.user_id}: ${error.message}`, 'error');
  }
}

// ---------------------------------------------------------------- broadcast

$('bc-target').addEventListener('change', () => {
  const kind = $('bc-target').value;
  const input = $('bc-target-value');
  input.disabled = kind === 'all';
  input.required = kind !== 'all';
  input.placeholder =
    kind === 'user'
      ? 'user id'
      : kind === 'event'
        ? 'event, e.g. system.notification'
        : kind === 'room'
          ? 'room'
          : '(everyone)';
});

$('broadcast-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  let data;
  try {
    data = JSON.parse($('bc-data').value);
  } catch {
    setStatus('bc-status', 'Data is not valid JSON.', 'error');
    return;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    setStatus('bc-status', 'Data must be a JSON object.', 'error');
    return;
  }
  const kind = $('bc-target').value;
  const value = $('bc-target-value').value.trim();
  const body = { type: $('bc-type').value.trim(), data };
  if (kind === 'user') body.target = { users: [value] };
  if (kind === 'event') body.target = { event: value };
  if (kind === 'room') body.target = { room: value };
  $('bc-send').disabled = true;
  try {
    const result = await api('POST', '/ws/broadcast', body);
    setStatus(
      'bc-status',
      `Sent ${shortId(result.message_id)} to ${number.format(result.connections_reached)} connection(s).`,
      'ok',
    );
  } catch (error) {
    setStatus('bc-status', `Refused: ${error.message}`, 'error');
  } finally {
    $('bc-send').disabled = state.token === null;
  }
});

// ---------------------------------------------------------------- the dashboard's own client

function showClientState(text, tone, code) {
  const node = $('client-state');
  node.dataset.state = tone;
  if (code === undefined) delete node.dataset.code;
  else node.dataset.code = String(code);
  $('client-state-text').textContent = text;
}

function connectClient() {
  if (state.client) state.client.close();
  state.ownConnectionId = null;
  const client = new RealtimeClient({
    url: wsUrl,
    getToken: () => state.token,
    maxReconnectAttempts: 10,
    onListenerError: (error) => console.warn('dashboard listener failed', error),
  });
  state.client = client;
  client.on('state', ({ newState }) => {
    if (client !== state.client) return;
    const text = newState === 'open' ? 'dashboard connected' : `dashboard ${newState}`;
    showClientState(text, newState === 'reconnecting' ? 'connecting' : newState);
  });
  client.on('established', (data) => {
    if (client !== state.client) return;
    state.ownConnectionId = data.connection_id;
    $('own-connection').textContent = `${data.connection_id} (${data.user_id})`;
  });
  client.on('close', ({ code, reason, willReconnect }) => {
    if (client !== state.client) return;
    if (!willReconnect) {
      showClientState(`dashboard closed: ${code}${reason ? ` ${reason}` : ''}`, 'closed', code);
    }
  });
  client.on('message', (envelope) => {
    if (client !== state.client || QUIET_TYPES.has(envelope.type)) return;
    addReceived(envelope);
  });
  client.connect().catch((error) => {
    if (client === state.client) {
      showClientState(`dashboard not connected: ${error.message}`, 'closed');
    }
  });
}

function addReceived(envelope) {
  state.receivedCount += 1;
  $('received-count').textContent = String(state.receivedCount);
  const list = $('received');
  list.querySelector('.empty')?.remove();
  const li = el('li', 'received-entry');
  li.dataset.testid = 'received-entry';
  li.dataset.type = String(envelope.type);
  li.dataset.source = String(envelope.source ?? '');
  const head = el('div', 'received-head');
  head.append(el('span', 'type', envelope.type), el('span', 'meta', clock()));
  if (envelope.source) head.append(el('span', 'tag', envelope.source));
  li.append(head, el('pre', 'data', JSON.stringify(envelope.data ?? {}, null, 2)));
  list.prepend(li);
  while (list.children.length > RECEIVED_LIMIT) list.lastElementChild.remove();
}

document.body.dataset.loaded = 'true';
