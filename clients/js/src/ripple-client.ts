/**
 * Ripple's JavaScript client: one WebSocket to Ripple (API Gateway on AWS, `ripple dev` locally)
 * speaking the protocol of `docs/protocol.md`.
 *
 * - reconnects with exponential backoff and jitter after an unexpected close, resuming the
 *   channels it was in and the chat written meanwhile (`resume=1`, `since`);
 * - keeps the socket alive within API Gateway's 10-minute idle limit;
 * - emits each chat message once (by `id`) and never a position older than one it emitted
 *   (by `seq`, per channel and user), whatever order or repetition frames arrive in;
 * - keeps each channel's presence set (snapshot, `join`, `leave`);
 * - numbers its own positions (`seq` from a millisecond clock, so it keeps increasing across
 *   reconnects and reloads).
 *
 * No runtime dependency: it uses the global `WebSocket` (browsers, Node 22+), or the one given in
 * the options (e.g. the `ws` package on Node 20).
 */

// ---- the protocol's frames (docs/protocol.md) --------------------------------------------------

/** Error codes of the `error` frame. */
export type ErrorCode =
  | 'bad_request' | 'unknown_action' | 'too_large' | 'not_member' | 'rate_limited' | 'forbidden'
  | 'too_many_channels' | 'channel_full' | 'slow_consumer';
const ERROR_CODES: readonly string[] = [
  'bad_request', 'unknown_action', 'too_large', 'not_member', 'rate_limited', 'forbidden',
  'too_many_channels', 'channel_full', 'slow_consumer',
];

export interface PositionEvent {
  type: 'position';
  channel: string;
  user: string;
  x: number;
  y: number;
  z: number;
  seq: number;
  /** Server write time, ms since the epoch. */
  ts: number;
  data?: Record<string, unknown>;
}

export interface MessageEvent {
  type: 'message';
  channel: string;
  user: string;
  text: string;
  id: string;
  /** Server write time, ms since the epoch. */
  ts: number;
}

export interface JoinEvent {
  type: 'join';
  channel: string;
  user: string;
}

export interface LeaveEvent {
  type: 'leave';
  channel: string;
  user: string;
}

export type RippleEvent = PositionEvent | MessageEvent | JoinEvent | LeaveEvent;

export interface WelcomeFrame {
  type: 'welcome';
  connectionId: string;
  user: string;
}

export interface SnapshotFrame {
  type: 'snapshot';
  channel: string;
  members: string[];
  positions: PositionEvent[];
  /** Only when asked for with `since` (or by resuming). */
  messages?: MessageEvent[];
}

export interface EventsFrame {
  type: 'events';
  events: RippleEvent[];
}

export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
}

/** The answer to a `join`: publishing to the channel is allowed from now on. */
export interface JoinedFrame { type: 'joined'; channel: string }
/** The answer to a `leave`. */
export interface LeftFrame { type: 'left'; channel: string }
/** The answer to a `message`: it is written, with the `id` and `ts` its event carries. */
export interface AckFrame { type: 'ack'; channel: string; id: string; ts: number }

export type ServerFrame =
  WelcomeFrame | SnapshotFrame | EventsFrame | ErrorFrame | JoinedFrame | LeftFrame | AckFrame;

export interface JoinFrame { action: 'join'; channel: string; since?: number }
export interface LeaveFrame { action: 'leave'; channel: string }
export interface PositionFrame {
  action: 'position';
  channel: string;
  x: number;
  y: number;
  z?: number;
  seq: number;
  data?: Record<string, unknown>;
}
export interface MessageFrame { action: 'message'; channel: string; text: string }
export type ClientFrame = JoinFrame | LeaveFrame | PositionFrame | MessageFrame;

// ---- guards: what a frame must look like to be used --------------------------------------------

const CHANNEL_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isSeq = (v: unknown): v is number => isNum(v) && Number.isInteger(v) && v >= 0;
const isChannel = (v: unknown): v is string => isStr(v) && CHANNEL_RE.test(v);
const isUser = (v: unknown): v is string => isStr(v) && v.length > 0;

export function isPositionEvent(v: unknown): v is PositionEvent {
  return isObj(v) && v.type === 'position' && isChannel(v.channel) && isUser(v.user) &&
    isNum(v.x) && isNum(v.y) && isNum(v.z) && isSeq(v.seq) && isNum(v.ts) &&
    (v.data === undefined || isObj(v.data));
}

export function isMessageEvent(v: unknown): v is MessageEvent {
  return isObj(v) && v.type === 'message' && isChannel(v.channel) && isUser(v.user) &&
    isStr(v.text) && isStr(v.id) && v.id.length > 0 && isNum(v.ts);
}

export function isRippleEvent(v: unknown): v is RippleEvent {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'position': return isPositionEvent(v);
    case 'message': return isMessageEvent(v);
    case 'join':
    case 'leave': return isChannel(v.channel) && isUser(v.user);
    default: return false;
  }
}

/** Whether `v` is a frame the server sends, as `docs/protocol.md` describes it. */
export function isServerFrame(v: unknown): v is ServerFrame {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'welcome': return isStr(v.connectionId) && v.connectionId.length > 0 && isUser(v.user);
    case 'snapshot':
      return isChannel(v.channel) && Array.isArray(v.members) && v.members.every(isUser) &&
        Array.isArray(v.positions) && v.positions.every(isPositionEvent) &&
        (v.messages === undefined || (Array.isArray(v.messages) && v.messages.every(isMessageEvent)));
    case 'events': return Array.isArray(v.events) && v.events.every(isRippleEvent);
    case 'error': return isStr(v.code) && ERROR_CODES.includes(v.code) && isStr(v.message);
    case 'joined':
    case 'left': return isChannel(v.channel);
    case 'ack': return isChannel(v.channel) && isStr(v.id) && isSeq(v.ts);
    default: return false;
  }
}

/** Whether `v` is a frame a client may send, as `docs/protocol.md` describes it. */
export function isClientFrame(v: unknown): v is ClientFrame {
  if (!isObj(v) || !isChannel(v.channel)) return false;
  switch (v.action) {
    case 'join': return v.since === undefined || isSeq(v.since);
    case 'leave': return true;
    case 'position':
      return isNum(v.x) && isNum(v.y) && (v.z === undefined || isNum(v.z)) && isSeq(v.seq) &&
        (v.data === undefined || isObj(v.data));
    case 'message': return isStr(v.text) && v.text.length > 0;
    default: return false;
  }
}

// ---- the client --------------------------------------------------------------------------------

/** The part of the WebSocket API the client uses (browsers' `WebSocket`, the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

export interface RippleClientOptions {
  /** `ws://127.0.0.1:3001/` (ripple dev) or `wss://{api}.execute-api.{region}.amazonaws.com/{stage}`. */
  url: string;
  /** Your user id (ignored by the server when it requires a token). */
  user?: string;
  /** An HS256 JWT, when the server requires one. */
  token?: string;
  /** Channels to join at connect. */
  channels?: string[];
  /** A WebSocket implementation; default: the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Chat written after this time (ms) comes with the first snapshots (e.g. the newest you stored). */
  since?: number;
  /** Ids of messages you already have (e.g. stored): they are not emitted again. */
  seenMessageIds?: Iterable<string>;
  /** First reconnect delay, ms (default 500); it doubles per attempt, with jitter. */
  reconnectMinMs?: number;
  /** Longest reconnect delay, ms (default 15,000). */
  reconnectMaxMs?: number;
  /** A keepalive frame goes out after this long without sending (default 4 minutes; API Gateway closes after 10 idle minutes). */
  keepaliveMs?: number;
}

export interface MessageMeta {
  /** `snapshot`: from a snapshot's history (missed while away); `live`: from an events frame. */
  source: 'snapshot' | 'live';
}

export interface ReconnectingInfo {
  /** 1 for the first retry after a drop. */
  attempt: number;
  /** How long until the next try, ms. */
  delayMs: number;
  /** The close code and reason of the socket that closed. */
  code: number;
  reason: string;
}

export interface ClientError {
  /** A protocol error code from the server, or `socket` / `bad_frame` from the client. */
  code: ErrorCode | 'socket' | 'bad_frame';
  message: string;
}

export interface RippleEventMap {
  welcome: WelcomeFrame;
  snapshot: SnapshotFrame;
  position: PositionEvent;
  message: MessageEvent;
  join: JoinEvent;
  leave: LeaveEvent;
  error: ClientError;
  reconnecting: ReconnectingInfo;
  reconnected: WelcomeFrame;
}
export type RippleEventType = keyof RippleEventMap;
type Listener<K extends RippleEventType> = (ev: RippleEventMap[K], meta: MessageMeta) => void;

/** The frame used to keep the socket alive; the server answers it with an `unknown_action` error, which the client swallows. */
export const KEEPALIVE_FRAME = '{"action":"ping"}';
const MAX_SEEN_IDS = 10_000;
const MAX_QUEUED_MESSAGES = 100;
/** How long a chat message waits for its answer before the next is sent anyway. */
const ANSWER_TIMEOUT_MS = 5_000;

interface ChannelState {
  members: Set<string>;
  /**
   * Events that came before this connection's snapshot: presence, replayed on top of it, and chat,
   * emitted after the snapshot's older messages so that a recovering client sees chat in order.
   */
  early: (JoinEvent | LeaveEvent | MessageEvent)[] | null;
}

export class RippleClient {
  private readonly opts: RippleClientOptions;
  private readonly WS: WebSocketConstructor;
  private readonly listeners = new Map<RippleEventType, Set<Listener<RippleEventType>>>();
  private readonly channelState = new Map<string, ChannelState>();
  private readonly seenIds = new Set<string>();
  private readonly lastSeq = new Map<string, number>();
  private readonly ownSeq = new Map<string, number>();
  private readonly positionsByChannel = new Map<string, Map<string, PositionEvent>>();
  /** Chat not sent yet: one is sent at a time, the next after its answer (see `pump`). */
  private readonly queued: MessageFrame[] = [];
  /** The chat message sent and not answered yet. */
  private inFlight: { frame: MessageFrame; timer: ReturnType<typeof setTimeout> } | null = null;
  /** Channels joined with `join()` whose `joined` has not come: their chat waits. */
  private readonly joining = new Set<string>();
  private ws: WebSocketLike | null = null;
  private welcome: WelcomeFrame | null = null;
  private waiters: { resolve: (w: WelcomeFrame) => void; reject: (e: Error) => void }[] = [];
  private closed = false;
  private everConnected = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private keepaliveTimer: ReturnType<typeof setInterval> | null = null;
  private lastSentAt = 0;
  private pendingKeepalives = 0;
  private newestTs: number | undefined;

  constructor(opts: RippleClientOptions) {
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error('no WebSocket: pass one in the options (e.g. `import WebSocket from "ws"`)');
    for (const c of opts.channels ?? []) {
      if (!isChannel(c)) throw new Error(`bad channel name ${JSON.stringify(c)}: 1-64 of A-Z a-z 0-9 _ . : -`);
    }
    this.opts = opts;
    this.WS = WS;
    this.newestTs = opts.since;
    for (const id of opts.seenMessageIds ?? []) this.rememberId(id);
    for (const c of opts.channels ?? []) this.channelState.set(c, { members: new Set(), early: [] });
    this.open();
  }

  /** Resolves with the `welcome` of the current connection (or of the next one, while reconnecting). */
  connected(): Promise<WelcomeFrame> {
    if (this.closed) return Promise.reject(new Error('the client is closed'));
    if (this.welcome && this.ws?.readyState === OPEN) return Promise.resolve(this.welcome);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Calls `fn` for every event of `type`; returns a function that removes it. */
  on<K extends RippleEventType>(type: K, fn: (ev: RippleEventMap[K], meta: MessageMeta) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn as Listener<RippleEventType>);
    return () => set.delete(fn as Listener<RippleEventType>);
  }

  /** The user the server knows this connection as (after `welcome`). */
  get user(): string | undefined {
    return this.welcome?.user ?? this.opts.user;
  }

  /** The channels this client is in (rejoined after every reconnect). */
  channels(): string[] {
    return [...this.channelState.keys()];
  }

  /** Joins `channel` (a `snapshot` follows); with `since`, the chat after it comes in the snapshot. */
  join(channel: string, opts: { since?: number } = {}): void {
    if (!isChannel(channel)) throw new Error(`bad channel name ${JSON.stringify(channel)}`);
    if (!this.channelState.has(channel)) this.channelState.set(channel, { members: new Set(), early: [] });
    const frame: JoinFrame = { action: 'join', channel };
    if (opts.since !== undefined) frame.since = opts.since;
    // Frames are handled concurrently on AWS: a message sent before `joined` may be `not_member`.
    if (this.isOpen()) this.joining.add(channel);
    this.send(frame);
  }

  /** Leaves `channel`. */
  leave(channel: string): void {
    this.channelState.delete(channel);
    this.positionsByChannel.delete(channel);
    this.send({ action: 'leave', channel });
  }

  /**
   * Publishes your position in `channel`, numbered with a `seq` that keeps increasing (a
   * millisecond clock). Returns the `seq`, or `null` when not connected (positions are not queued:
   * send the next one).
   */
  position(channel: string, p: { x: number; y: number; z?: number; data?: Record<string, unknown> }): number | null {
    const seq = Math.max(Date.now(), (this.ownSeq.get(channel) ?? 0) + 1);
    const frame: PositionFrame = { action: 'position', channel, x: p.x, y: p.y, seq };
    if (p.z !== undefined) frame.z = p.z;
    if (p.data !== undefined) frame.data = p.data;
    if (!isClientFrame(frame)) throw new Error('bad position: x, y, z finite numbers, data an object');
    if (!this.isOpen()) return null;
    this.ownSeq.set(channel, seq);
    this.send(frame);
    return seq;
  }

  /**
   * Publishes a chat message. Messages are sent one at a time, each after the server answered
   * the one before (`ack` or an error), so they are written in the order you called this: API
   * Gateway handles a connection's frames concurrently, in no order. While disconnected they wait
   * and go after the reconnect; one sent whose answer a reconnect cut off is sent again.
   */
  message(channel: string, text: string): void {
    const frame: MessageFrame = { action: 'message', channel, text };
    if (!isClientFrame(frame)) throw new Error('bad message: a channel name and non-empty text');
    if (this.queued.length >= MAX_QUEUED_MESSAGES) {
      throw new Error(`${MAX_QUEUED_MESSAGES} messages already waiting to be sent`);
    }
    this.queued.push(frame);
    this.pump();
  }

  /** The users in `channel` (from its snapshot, then `join` and `leave`); you included. */
  members(channel: string): string[] {
    return [...(this.channelState.get(channel)?.members ?? [])];
  }

  /** The latest position of each other user in `channel`. */
  positions(channel: string): Map<string, PositionEvent> {
    return new Map(this.positionsByChannel.get(channel) ?? []);
  }

  /** Closes the socket for good: no reconnect. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopKeepalive();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(1000, 'client closed'); } catch { /* already closing */ }
    }
    for (const w of this.waiters.splice(0)) w.reject(new Error('the client is closed'));
  }

  // ---- internals -------------------------------------------------------------------------------

  private isOpen(): boolean {
    return !!this.ws && this.ws.readyState === OPEN && !!this.welcome;
  }

  private url(): string {
    const u = new URL(this.opts.url);
    if (this.opts.user !== undefined) u.searchParams.set('user', this.opts.user);
    if (this.opts.token !== undefined) u.searchParams.set('token', this.opts.token);
    for (const c of this.channelState.keys()) u.searchParams.append('channel', c);
    if (this.everConnected) u.searchParams.set('resume', '1');
    if (this.newestTs !== undefined) u.searchParams.set('since', String(this.newestTs));
    return u.toString();
  }

  private open(): void {
    this.retryTimer = null;
    if (this.closed) return;
    for (const state of this.channelState.values()) state.early = [];
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url());
    } catch (e) {
      this.emit('error', { code: 'socket', message: `cannot open the socket: ${(e as Error).message}` });
      this.scheduleReconnect(1006, String(e));
      return;
    }
    this.ws = ws;
    ws.onmessage = (m) => { if (ws === this.ws) this.onFrame(m.data); };
    ws.onerror = () => { /* a close follows */ };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.welcome = null;
      this.stopKeepalive();
      if (this.inFlight) {
        // Its answer is lost with the socket: send it again after the reconnect.
        clearTimeout(this.inFlight.timer);
        this.queued.unshift(this.inFlight.frame);
        this.inFlight = null;
      }
      this.scheduleReconnect(e.code, e.reason);
    };
  }

  private scheduleReconnect(code: number, reason: string): void {
    if (this.closed || this.retryTimer) return;
    const min = this.opts.reconnectMinMs ?? 500;
    const max = this.opts.reconnectMaxMs ?? 15_000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delayMs = Math.round(base / 2 + Math.random() * base / 2);
    this.attempt++;
    this.emit('reconnecting', { attempt: this.attempt, delayMs, code, reason });
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  /** Sends the next chat message when none is in flight and its channel's join is answered. */
  private pump(): void {
    const next = this.queued[0];
    if (this.inFlight || !next || !this.isOpen() || this.joining.has(next.channel)) return;
    this.queued.shift();
    // An answer that never comes (a lost frame) must not stop the chat for good.
    const timer = setTimeout(() => this.answered(), ANSWER_TIMEOUT_MS);
    (timer as { unref?: () => void }).unref?.();
    this.inFlight = { frame: next, timer };
    this.send(next);
  }

  /** The in-flight message was answered (or given up on): the next may go. */
  private answered(): void {
    if (this.inFlight) clearTimeout(this.inFlight.timer);
    this.inFlight = null;
    this.pump();
  }

  private send(frame: ClientFrame | string): void {
    if (!this.isOpen() || !this.ws) return;
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    this.lastSentAt = Date.now();
  }

  private startKeepalive(): void {
    this.stopKeepalive();
    const every = this.opts.keepaliveMs ?? 240_000;
    this.keepaliveTimer = setInterval(() => {
      if (Date.now() - this.lastSentAt < every / 2) return;
      this.pendingKeepalives++;
      this.send(KEEPALIVE_FRAME);
    }, every / 2);
    (this.keepaliveTimer as { unref?: () => void }).unref?.();
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    this.pendingKeepalives = 0;
  }

  private onFrame(data: unknown): void {
    let frame: unknown;
    try {
      frame = JSON.parse(String(data));
    } catch {
      this.emit('error', { code: 'bad_frame', message: 'the server sent a frame that is not JSON' });
      return;
    }
    if (!isServerFrame(frame)) {
      this.emit('error', { code: 'bad_frame', message: `unexpected frame: ${String(data).slice(0, 200)}` });
      return;
    }
    switch (frame.type) {
      case 'welcome': return this.onWelcome(frame);
      case 'snapshot': return this.onSnapshot(frame);
      case 'events':
        for (const ev of frame.events) this.onEvent(ev, 'live');
        return;
      case 'joined':
        this.joining.delete(frame.channel);
        return this.pump();
      case 'left':
        return;
      case 'ack':
        return this.answered();
      case 'error':
        if (frame.code === 'unknown_action' && this.pendingKeepalives > 0) {
          this.pendingKeepalives--;
          return;
        }
        this.emit('error', { code: frame.code, message: frame.message });
        // Errors name no frame: one may answer the message in flight, or a join.
        this.joining.clear();
        this.answered();
    }
  }

  private onWelcome(w: WelcomeFrame): void {
    const again = this.everConnected;
    this.welcome = w;
    this.everConnected = true;
    this.attempt = 0;
    this.lastSentAt = Date.now();
    this.startKeepalive();
    this.emit('welcome', w);
    if (again) this.emit('reconnected', w);
    // The channels are rejoined by the connect itself: nothing to wait for.
    this.joining.clear();
    this.pump();
    for (const waiter of this.waiters.splice(0)) waiter.resolve(w);
  }

  private onSnapshot(s: SnapshotFrame): void {
    const state = this.channelState.get(s.channel);
    if (!state) return; // left since
    const members = new Set(s.members);
    if (this.welcome) members.add(this.welcome.user);
    const early = state.early ?? [];
    for (const ev of early) {
      if (ev.type === 'message') continue;
      if (ev.type === 'join') members.add(ev.user);
      else if (ev.user !== this.welcome?.user) members.delete(ev.user);
    }
    state.members = members;
    state.early = null;
    // Positions of users no longer there are dropped from the view.
    const positions = this.positionsByChannel.get(s.channel);
    if (positions) for (const user of [...positions.keys()]) if (!members.has(user)) positions.delete(user);
    this.emit('snapshot', s);
    for (const p of s.positions) this.onEvent(p, 'snapshot');
    const messages = [...(s.messages ?? [])].sort((a, b) => a.ts - b.ts);
    for (const m of messages) this.onEvent(m, 'snapshot');
    for (const m of early) if (m.type === 'message') this.onEvent(m, 'live');
  }

  private onEvent(ev: RippleEvent, source: MessageMeta['source']): void {
    const state = this.channelState.get(ev.channel);
    if (!state) return; // not (or no longer) in that channel
    switch (ev.type) {
      case 'position': {
        const key = `${ev.channel}\u0000${ev.user}`;
        const last = this.lastSeq.get(key);
        if (last !== undefined && ev.seq <= last) return; // a repeat or an older one
        this.lastSeq.set(key, ev.seq);
        let byUser = this.positionsByChannel.get(ev.channel);
        if (!byUser) this.positionsByChannel.set(ev.channel, (byUser = new Map()));
        byUser.set(ev.user, ev);
        this.emit('position', ev, source);
        return;
      }
      case 'message':
        if (state.early) {
          state.early.push(ev);
          return;
        }
        if (this.seenIds.has(ev.id)) return;
        this.rememberId(ev.id);
        if (this.newestTs === undefined || ev.ts > this.newestTs) this.newestTs = ev.ts;
        this.emit('message', ev, source);
        return;
      case 'join':
        if (state.early) state.early.push(ev);
        if (state.members.has(ev.user)) return;
        state.members.add(ev.user);
        this.emit('join', ev, source);
        return;
      case 'leave':
        if (state.early) state.early.push(ev);
        if (ev.user === this.welcome?.user || !state.members.has(ev.user)) return;
        state.members.delete(ev.user);
        this.positionsByChannel.get(ev.channel)?.delete(ev.user);
        this.emit('leave', ev, source);
        return;
    }
  }

  private rememberId(id: string): void {
    this.seenIds.add(id);
    if (this.seenIds.size > MAX_SEEN_IDS) {
      const oldest = this.seenIds.values().next().value;
      if (oldest !== undefined) this.seenIds.delete(oldest);
    }
  }

  private emit<K extends RippleEventType>(type: K, ev: RippleEventMap[K], source: MessageMeta['source'] = 'live'): void {
    for (const fn of [...(this.listeners.get(type) ?? [])]) {
      try {
        fn(ev, { source });
      } catch (e) {
        // A failing listener must not break the client.
        setTimeout(() => { throw e; });
      }
    }
  }
}

// ---- interpolation ----------------------------------------------------------------------------

export interface Point { x: number; y: number; z: number }

/**
 * Smooths a remote player's positions: feed every update with `push`, draw `at(now)`. It renders
 * `delayMs` in the past, between the two updates around that time (linear), so movement stays
 * smooth when updates come in bursts. Times are the server's `ts`, mapped to this clock by the
 * smallest observed delay.
 */
export class Interpolator {
  private samples: { t: number; seq: number; p: Point }[] = [];
  private offset: number | null = null;
  constructor(private readonly delayMs = 100, private readonly maxSamples = 32) {}

  /** Adds an update (older or repeated `seq`s are ignored). */
  push(ev: { x: number; y: number; z?: number; seq: number; ts?: number }, receivedAt = Date.now()): void {
    const last = this.samples[this.samples.length - 1];
    if (last && ev.seq <= last.seq) return;
    const ts = ev.ts ?? receivedAt;
    const offset = receivedAt - ts;
    if (this.offset === null || offset < this.offset) this.offset = offset;
    this.samples.push({ t: Math.max(ts, last?.t ?? ts), seq: ev.seq, p: { x: ev.x, y: ev.y, z: ev.z ?? 0 } });
    if (this.samples.length > this.maxSamples) this.samples.shift();
  }

  /** Where to draw at local time `now`, or `null` before the first update. */
  at(now = Date.now()): Point | null {
    const s = this.samples;
    if (s.length === 0) return null;
    const t = now - (this.offset ?? 0) - this.delayMs;
    if (t <= s[0].t) return { ...s[0].p };
    for (let i = 1; i < s.length; i++) {
      if (t <= s[i].t) {
        const a = s[i - 1], b = s[i];
        const k = b.t === a.t ? 1 : (t - a.t) / (b.t - a.t);
        return { x: a.p.x + (b.p.x - a.p.x) * k, y: a.p.y + (b.p.y - a.p.y) * k, z: a.p.z + (b.p.z - a.p.z) * k };
      }
    }
    return { ...s[s.length - 1].p };
  }
}
