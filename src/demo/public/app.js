// The realtime demo page: vanilla JS on the package's client SDK, served as ES modules.
// The SDK sends the token as the `bearer` WebSocket subprotocol, the page's own requests in an
// Authorization header: never in a URL. It is kept in memory only.
import { ClientErrorCode, RealtimeClient } from '/sdk/client/index.js';
import { DEFAULT_SUBSCRIBABLE_EVENTS } from '/sdk/protocol/index.js';

const LOG_LIMIT = 200;
const TOAST_MS = 5000;
/** Toasts shown at once: a burst of notifications must not bury the page (newest kept). */
const TOAST_LIMIT = 5;
const TOAST_CHARS = 160;
const TOAST_LEVELS = new Set(['info', 'warning', 'error']);
/** A token from /demo/token is replaced before a (re)connect when it expires within this. */
const TOKEN_REFRESH_MARGIN_MS = 10_000;
/** Failures the SDK raises itself; the server's own errors are shown as they arrive. */
const CLIENT_ERROR_CODES = new Set(Object.values(ClientErrorCode));

const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
};

const state = {
  token: null,
  tokenUser: null,
  /** Where a fresh token comes from when this one runs out: set for /demo/token tokens only. */
  tokenRequest: null,
  tokenExpiresAt: 0,
  /** The RealtimeClient of the current connection (one per Connect click). */
  client: null,
  /** Names the server acknowledged for the current connection. */
  subscriptions: new Set(),
  upload: { id: null, progress: 0, status: 'idle' },
  logCount: 0,
};

const wsUrl = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/ws`;

// ---------------------------------------------------------------- helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(date = new Date()) {
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function setStatus(id, text, tone = '') {
  const node = $(id);
  node.textContent = text;
  node.dataset.tone = tone;
}

function isOpen() {
  return state.client !== null && state.client.state === 'open';
}

/** A readable message from an error body of the demo's REST routes. */
function errorText(status, body) {
  const message = body && body.message;
  if (Array.isArray(message)) return message.join('; ');
  if (typeof message === 'string') return message;
  return `HTTP ${status}`;
}

/** POST with the bearer token; resolves to the JSON body, throws with a readable message. */
async function post(path, body, { auth = true } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (auth) headers.authorization = `Bearer ${state.token}`;
  const response = await fetch(path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body ?? {}),
  });
  let json = null;
  try {
    json = await response.json();
  } catch {
    // not JSON
  }
  if (!response.ok) {
    const error = new Error(errorText(response.status, json));
    error.status = response.status;
    throw error;
  }
  return json;
}

function toast(text, level = 'info') {
  // Both come from the server (an admin broadcast can carry anything): known levels only, and
  // the text cut to a few lines; the event log keeps the whole message.
  const tone = TOAST_LEVELS.has(level) ? level : 'info';
  const full = typeof text === 'string' ? text : JSON.stringify(text ?? '');
  const shown = full.length > TOAST_CHARS ? `${full.slice(0, TOAST_CHARS)}…` : full;
  const item = el('div', `toast ${tone}`);
  item.append(el('strong', '', tone), el('span', '', shown));
  const toasts = $('toasts');
  toasts.prepend(item);
  while (toasts.children.length > TOAST_LIMIT) toasts.lastElementChild.remove();
  setTimeout(() => item.remove(), TOAST_MS);
}

// ---------------------------------------------------------------- controls state

function refreshControls() {
  const open = isOpen();
  const active = state.client !== null;
  $('connect').disabled = !state.token || active;
  $('disconnect').disabled = !active;
  for (const id of ['upload-start', 'notify-send', 'mark-read']) $(id).disabled = !state.token;
  for (const id of ['ping', 'room-join', 'room-leave', 'chat-send']) $(id).disabled = !open;
  $('upload-cancel').disabled = !open || state.upload.status !== 'uploading';
}

function setConnState(name, text) {
  $('conn-state').dataset.state = name;
  $('conn-state-text').textContent = text;
  refreshControls();
}

// ---------------------------------------------------------------- event log

function logEntry(direction, message) {
  const type = typeof message.type === 'string' ? message.type : '(no type)';
  const item = el('li', `entry ${direction}`);
  item.dataset.testid = 'log-entry';
  item.dataset.type = type;
  item.dataset.direction = direction;

  const head = el('div', 'entry-head');
  head.append(
    el('span', 'dir', direction === 'in' ? '↓' : '↑'),
    el('span', `type t-${category(type)}`, type),
  );
  const meta = el('span', 'meta');
  if (message.in_reply_to) meta.append(el('span', 'reply', `↩ ${message.in_reply_to}`));
  if (message.source) meta.append(el('span', 'reply', message.source));
  meta.append(el('time', '', clock()));
  head.append(meta);
  item.append(head);

  const data = message.data;
  const empty = data === undefined || (isObject(data) && Object.keys(data).length === 0);
  if (!empty) item.append(el('pre', 'data', JSON.stringify(data, null, 2)));
  applyFilter(item);

  const log = $('log');
  log.prepend(item);
  while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
  state.logCount = log.children.length;
  $('log-count').textContent = String(state.logCount);
  $('log-empty').hidden = state.logCount > 0;
}

function isObject(value) {
  return typeof value === 'object' && value !== null;
}

function category(type) {
  if (type === 'error') return 'error';
  if (type.startsWith('upload.')) return 'upload';
  if (type.startsWith('system.') || type.startsWith('notification')) return 'system';
  if (type.startsWith('chat.')) return 'chat';
  if (type.startsWith('connection.')) return 'connection';
  return 'other';
}

function applyFilter(item) {
  const filter = $('log-filter').value.trim().toLowerCase();
  const showSent = $('log-sent').checked;
  item.hidden =
    (!showSent && item.dataset.direction === 'out') ||
    (filter !== '' && !item.dataset.type.toLowerCase().includes(filter));
}

function refilter() {
  for (const item of $('log').children) applyFilter(item);
}

// ---------------------------------------------------------------- token

async function fetchToken(request) {
  const body = await post('/demo/token', request, { auth: false });
  return { token: body.data.token, expiresAt: Date.now() + body.data.expires_in * 1000 };
}

async function requestToken(event) {
  event.preventDefault();
  const request = { user_id: $('user-id').value.trim(), admin: $('admin').checked };
  setStatus('token-status', 'Requesting a token…');
  try {
    const { token, expiresAt } = await fetchToken(request);
    useToken(token, request.user_id, `expires ${clock(new Date(expiresAt)).slice(0, 8)}`, {
      request,
      expiresAt,
    });
  } catch (error) {
    const text =
      error.status === 404
        ? 'The token endpoint is off (NODE_ENV=production). Use an existing token below.'
        : `Could not get a token: ${error.message}`;
    setStatus('token-status', text, 'error');
  }
}

function useToken(token, userId, note, { request = null, expiresAt = 0 } = {}) {
  state.token = token;
  state.tokenUser = userId;
  state.tokenRequest = request;
  state.tokenExpiresAt = expiresAt;
  const admin = request && request.admin ? ' (admin)' : '';
  const who = userId ? `Token ready for ${userId}${admin}` : 'Token ready';
  const reconnect = state.client ? ' Reconnect to use it on the socket.' : '';
  setStatus('token-status', `${who}, ${note}.${reconnect}`, 'ok');
  $('token-status').dataset.state = 'ready';
  refreshControls();
}

function usePastedToken(event) {
  event.preventDefault();
  const token = $('token-input').value.trim();
  if (!token) return;
  $('token-input').value = '';
  useToken(token, null, 'pasted');
}

/**
 * The SDK's getToken, called before every connect and reconnect: a /demo/token token about to
 * expire is replaced, so that after a 4001 the client comes back with a valid one.
 */
async function currentToken() {
  const expiring = state.tokenExpiresAt - Date.now() < TOKEN_REFRESH_MARGIN_MS;
  if (state.tokenRequest && expiring) {
    const { token, expiresAt } = await fetchToken(state.tokenRequest);
    state.token = token;
    state.tokenExpiresAt = expiresAt;
  }
  return state.token;
}

// ---------------------------------------------------------------- connection

const STATE_TEXT = {
  connecting: 'connecting…',
  open: 'open',
  reconnecting: 'reconnecting…',
  closed: 'closed',
};

function connect() {
  if (!state.token || state.client) return;
  $('close-info').textContent = '';
  const client = new RealtimeClient({ url: wsUrl, getToken: currentToken });
  state.client = client;
  // Events of a client that was replaced (Disconnect, then Connect) are ignored.
  const current = (handler) => (payload) => {
    if (state.client === client) handler(payload);
  };
  client.on('state', current(onState));
  client.on('message', current(receive));
  client.on('close', current(onClose));
  client.on('resumed', current(onResumed));
  client.on('resync', current(onResync));
  client.connect().then(
    current(() => {
      const wanted = checkedEvents().filter((name) => !state.subscriptions.has(name));
      if (wanted.length > 0) setSubscribed(wanted, true);
    }),
    // How the connection ended is already shown by onClose.
    () => undefined,
  );
}

function onState({ newState }) {
  const closedCode = newState === 'closed' ? $('conn-state').dataset.code : undefined;
  const text = closedCode ? `closed ${closedCode}` : STATE_TEXT[newState];
  setConnState(newState, text);
  if (newState === 'closed') state.client = null;
  // "Reconnecting…" is over once open; a resume (when there was one) adds what it replayed.
  if (newState === 'open' && $('close-info').dataset.reconnecting === 'true') {
    setStatus('close-info', 'Reconnected.', 'ok');
  }
  if (newState === 'open' || newState === 'closed') $('close-info').dataset.reconnecting = 'false';
  refreshControls();
}

function onClose({ code, reason, willReconnect }) {
  const why = reason || (code === 1006 ? 'no close frame (network)' : '');
  $('conn-state').dataset.code = String(code);
  const next = willReconnect ? ' Reconnecting…' : '';
  setStatus(
    'close-info',
    `Closed with code ${code}${why ? ` (${why})` : ''}.${next}`,
    code === 1000 ? '' : 'error',
  );
  $('close-info').dataset.reconnecting = String(willReconnect);
  // The server forgets subscriptions with the connection; the SDK restores them on reconnect
  // and each acknowledgement shows them again.
  state.subscriptions.clear();
  renderSubscriptions();
}

/** After a reconnect the SDK replayed what this page missed; say how much. */
function onResumed({ recovered, streams }) {
  const replayed = streams.reduce((sum, stream) => sum + stream.replayed, 0);
  setStatus(
    'close-info',
    `Reconnected: ${replayed} missed message(s) replayed${recovered ? '' : ', some could not be'}.`,
    recovered ? 'ok' : 'error',
  );
}

/** Some messages could not be replayed (restart, too old): a real app reloads its state here. */
function onResync({ streams }) {
  const which = streams.map((stream) => `${stream.stream} (${stream.reason ?? 'unknown'})`);
  toast(`Missed messages could not all be recovered: ${which.join(', ')}`, 'warning');
}

function disconnect() {
  if (state.client) state.client.close();
}

/**
 * Sends a request through the SDK and logs it; resolves with the reply, or undefined when it
 * failed (a server error is shown when it arrives, a client-side failure here).
 */
async function request(type, data) {
  return call(type, data, () => state.client.request(type, data));
}

/**
 * Subscribes or unsubscribes through the SDK's own methods, so that it restores the subscriptions
 * after a reconnect.
 */
async function setSubscribed(events, on) {
  const type = on ? 'subscribe' : 'unsubscribe';
  return call(type, { events }, () => state.client[type](events));
}

async function call(type, data, send) {
  if (!state.client) return undefined;
  logEntry('out', { type, data });
  try {
    return await send();
  } catch (error) {
    if (CLIENT_ERROR_CODES.has(error.code)) toast(`${type}: ${error.message}`, 'error');
    return undefined;
  }
}

/** Every server message, as the SDK passes it on (parsed, with `data` always an object). */
function receive(message) {
  logEntry('in', message);
  const data = message.data;
  switch (message.type) {
    case 'connection.established':
      return onEstablished(data);
    case 'subscription.acknowledged':
      for (const name of data.events ?? []) state.subscriptions.add(name);
      if (data.invalid_events && data.invalid_events.length > 0) {
        toast(`Refused: ${data.invalid_events.join(', ')}`, 'warning');
      }
      return renderSubscriptions();
    case 'unsubscription.acknowledged':
      for (const name of data.events ?? []) state.subscriptions.delete(name);
      return renderSubscriptions();
    case 'upload.progress':
    case 'upload.completed':
    case 'upload.cancelled':
    case 'upload.error':
    case 'upload.cancel.acknowledged':
      return onUpload(message.type, data);
    case 'chat.message':
      return onChat(data);
    case 'chat.sent':
      return setStatus(
        'chat-status',
        `Sent to room:${data.room}, delivered to ${data.delivered} connection(s).`,
        'ok',
      );
    case 'system.notification':
      return toast(data.message, data.level);
    case 'system.maintenance':
      return toast(data.message, 'warning');
    case 'notification_read':
      return setStatus(
        'read-status',
        `notification_read: ${data.notification_id} at ${data.read_at}`,
        'ok',
      );
    case 'error':
      return toast(`${data.code}: ${data.message}`, 'error');
    default:
      return undefined;
  }
}

function onEstablished(data) {
  $('info-connection-id').textContent = data.connection_id;
  $('info-user-id').textContent = data.user_id;
  $('info-server-time').textContent = data.server_time;
  const limits = data.limits ?? {};
  $('limit-max-message-size').textContent = `${Math.round(limits.max_message_size / 1024)} KiB`;
  $('limit-rate').textContent = `${limits.rate_limit_messages} / ${limits.rate_limit_window} s`;
  $('limit-heartbeat').textContent = `${limits.heartbeat_interval} s`;
  $('limit-timeout').textContent = `${limits.connection_timeout} s`;
  $('limit-per-user').textContent = String(limits.max_connections_per_user);
}

// ---------------------------------------------------------------- subscriptions

function buildEventList() {
  const list = $('event-list');
  for (const name of DEFAULT_SUBSCRIBABLE_EVENTS) {
    const label = el('label', 'check');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = name;
    box.dataset.event = name;
    box.dataset.testid = `event-${name}`;
    box.addEventListener('change', () => toggleEvents([name], box.checked));
    label.append(box, el('code', '', name));
    list.append(label);
  }
}

function eventBoxes() {
  return [...$('event-list').querySelectorAll('input[type=checkbox]')];
}

function checkedEvents() {
  return eventBoxes()
    .filter((box) => box.checked)
    .map((box) => box.value);
}

function toggleEvents(names, on) {
  if (names.length === 0 || !isOpen()) return;
  setSubscribed(names, on);
}

function setAllEvents(on) {
  const changed = eventBoxes().filter((box) => box.checked !== on);
  for (const box of changed) box.checked = on;
  toggleEvents(
    changed.map((box) => box.value),
    on,
  );
}

function renderSubscriptions() {
  const chips = $('active-subs');
  chips.replaceChildren();
  const names = [...state.subscriptions].sort();
  if (names.length === 0) chips.append(el('span', 'muted', 'none'));
  for (const name of names) {
    const chip = el('span', name.startsWith('room:') ? 'chip room' : 'chip', name);
    chip.dataset.name = name;
    chips.append(chip);
  }
}

// ---------------------------------------------------------------- uploads

async function startUpload() {
  setUpload({ id: null, progress: 0, status: 'starting' });
  try {
    const body = await post('/demo/upload', {});
    // Progress may already have arrived for this id (the socket can be faster than fetch).
    if (state.upload.id !== body.data.upload_id) {
      setUpload({ id: body.data.upload_id, progress: 0, status: 'uploading' });
    }
    if (!isOpen()) toast('Connect to watch the progress.', 'warning');
  } catch (error) {
    setUpload({ id: null, progress: 0, status: 'error' });
    toast(`Upload not started: ${error.message}`, 'error');
  }
}

function cancelUpload() {
  if (state.upload.id && state.upload.status === 'uploading') {
    request('upload.cancel', { upload_id: state.upload.id });
  }
}

function onUpload(type, data) {
  const current = state.upload;
  const idle = current.status !== 'uploading' && current.status !== 'cancelling';
  // Follow the upload this page started, or a new one (for example from another tab).
  if (data.upload_id !== current.id && !(idle && type === 'upload.progress')) return;
  if (type === 'upload.progress') {
    if (current.status === 'cancelling') {
      setUpload({ ...current, progress: data.progress });
    } else {
      setUpload({ id: data.upload_id, progress: data.progress, status: 'uploading' });
    }
  } else if (type === 'upload.completed') {
    setUpload({ id: data.upload_id, progress: 100, status: 'completed' });
  } else if (type === 'upload.cancelled') {
    setUpload({ ...current, status: 'cancelled' });
  } else if (type === 'upload.error') {
    setUpload({ ...current, status: 'error' });
  } else if (type === 'upload.cancel.acknowledged' && current.status === 'uploading') {
    setUpload({ ...current, status: 'cancelling' });
  }
}

function setUpload(upload) {
  state.upload = upload;
  const percent = Math.max(0, Math.min(100, Math.round(upload.progress)));
  $('upload-fill').style.width = `${percent}%`;
  $('upload-bar').setAttribute('aria-valuenow', String(percent));
  $('upload-bar').dataset.state = upload.status;
  $('upload-percent').textContent = `${percent}%`;
  $('upload-status').textContent = upload.status;
  $('upload-status').dataset.state = upload.status;
  $('upload-id').textContent = upload.id ?? '';
  refreshControls();
}

// ---------------------------------------------------------------- ping

async function ping() {
  if (!isOpen()) return;
  logEntry('out', { type: 'ping' });
  try {
    const ms = await state.client.ping();
    const result = $('ping-result');
    result.textContent = `round trip ${ms.toFixed(1)} ms`;
    result.dataset.state = 'ok';
    result.dataset.ms = ms.toFixed(3);
  } catch (error) {
    if (CLIENT_ERROR_CODES.has(error.code)) toast(`ping: ${error.message}`, 'error');
  }
}

// ---------------------------------------------------------------- notifications

async function notify(event) {
  event.preventDefault();
  const message = $('notify-message').value.trim();
  const level = $('notify-level').value;
  try {
    const body = await post('/demo/notify', { message, level });
    setStatus(
      'notify-status',
      `Broadcast reached ${body.data.connections_reached} connection(s).`,
      'ok',
    );
  } catch (error) {
    setStatus('notify-status', `Not sent: ${error.message}`, 'error');
  }
}

async function markRead(event) {
  event.preventDefault();
  const id = $('read-id').value.trim();
  setStatus('read-status', `Marking ${id} read…`);
  try {
    const body = await post(`/notifications/${encodeURIComponent(id)}/read`, {});
    // notification_read usually arrives on the socket first; keep its text when it did.
    if ($('read-status').dataset.tone !== 'ok') {
      setStatus(
        'read-status',
        `Marked read; pushed to ${body.data.connections_reached} connection(s).`,
        'ok',
      );
    }
  } catch (error) {
    setStatus('read-status', `Failed: ${error.message}`, 'error');
  }
}

// ---------------------------------------------------------------- rooms and chat

function roomName() {
  const input = $('room-name');
  return input.checkValidity() ? input.value.trim() : null;
}

function joinRoom(event) {
  event.preventDefault();
  const room = roomName();
  if (room) setSubscribed([`room:${room}`], true);
}

function leaveRoom() {
  const room = roomName();
  if (room) setSubscribed([`room:${room}`], false);
}

async function sendChat(event) {
  event.preventDefault();
  const room = roomName();
  const text = $('chat-text').value.trim();
  if (!room) {
    setStatus('chat-status', 'Room names are 1-64 letters, digits, _ or -.', 'error');
    return;
  }
  if (!text) return;
  // Cleared only once the server took it: a refused message stays in the box.
  const reply = await request('chat.send', { room, text });
  if (reply && $('chat-text').value.trim() === text) $('chat-text').value = '';
}

function onChat(data) {
  const log = $('chat-log');
  log.querySelector('.empty')?.remove();
  const mine = data.from === $('info-user-id').textContent;
  const item = el('li', mine ? 'mine' : 'theirs');
  item.dataset.testid = 'chat-message';
  item.dataset.from = data.from;
  item.dataset.room = data.room;
  const head = el('div', 'chat-head');
  head.append(el('strong', '', data.from), el('span', 'muted', `room:${data.room}`));
  head.append(el('time', 'muted', clock(new Date(data.timestamp))));
  item.append(head, el('p', 'chat-text', data.text));
  log.append(item);
  while (log.children.length > LOG_LIMIT) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------- wiring

function init() {
  $('ws-url').textContent = wsUrl;
  buildEventList();
  $('token-form').addEventListener('submit', requestToken);
  $('paste-form').addEventListener('submit', usePastedToken);
  $('connect').addEventListener('click', connect);
  $('disconnect').addEventListener('click', disconnect);
  $('events-all').addEventListener('click', () => setAllEvents(true));
  $('events-none').addEventListener('click', () => setAllEvents(false));
  $('upload-start').addEventListener('click', startUpload);
  $('upload-cancel').addEventListener('click', cancelUpload);
  $('ping').addEventListener('click', ping);
  $('notify-form').addEventListener('submit', notify);
  $('read-form').addEventListener('submit', markRead);
  $('room-form').addEventListener('submit', joinRoom);
  $('room-leave').addEventListener('click', leaveRoom);
  $('chat-form').addEventListener('submit', sendChat);
  $('log-filter').addEventListener('input', refilter);
  $('log-sent').addEventListener('change', refilter);
  $('log-clear').addEventListener('click', () => {
    $('log').replaceChildren();
    state.logCount = 0;
    $('log-count').textContent = '0';
    $('log-empty').hidden = false;
  });
  setUpload(state.upload);
  refreshControls();
  document.body.dataset.ready = 'true';
}

init();
