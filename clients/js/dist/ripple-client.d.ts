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
/** Error codes of the `error` frame. */
export type ErrorCode = 'bad_request' | 'unknown_action' | 'too_large' | 'not_member' | 'rate_limited' | 'forbidden' | 'too_many_channels' | 'channel_full' | 'slow_consumer';
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
export interface JoinedFrame {
    type: 'joined';
    channel: string;
}
/** The answer to a `leave`. */
export interface LeftFrame {
    type: 'left';
    channel: string;
}
/** The answer to a `message`: it is written, with the `id` and `ts` its event carries. */
export interface AckFrame {
    type: 'ack';
    channel: string;
    id: string;
    ts: number;
}
export type ServerFrame = WelcomeFrame | SnapshotFrame | EventsFrame | ErrorFrame | JoinedFrame | LeftFrame | AckFrame;
export interface JoinFrame {
    action: 'join';
    channel: string;
    since?: number;
}
export interface LeaveFrame {
    action: 'leave';
    channel: string;
}
export interface PositionFrame {
    action: 'position';
    channel: string;
    x: number;
    y: number;
    z?: number;
    seq: number;
    data?: Record<string, unknown>;
}
export interface MessageFrame {
    action: 'message';
    channel: string;
    text: string;
}
export type ClientFrame = JoinFrame | LeaveFrame | PositionFrame | MessageFrame;
export declare function isPositionEvent(v: unknown): v is PositionEvent;
export declare function isMessageEvent(v: unknown): v is MessageEvent;
export declare function isRippleEvent(v: unknown): v is RippleEvent;
/** Whether `v` is a frame the server sends, as `docs/protocol.md` describes it. */
export declare function isServerFrame(v: unknown): v is ServerFrame;
/** Whether `v` is a frame a client may send, as `docs/protocol.md` describes it. */
export declare function isClientFrame(v: unknown): v is ClientFrame;
/** The part of the WebSocket API the client uses (browsers' `WebSocket`, the `ws` package). */
export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
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
/** The frame used to keep the socket alive; the server answers it with an `unknown_action` error, which the client swallows. */
export declare const KEEPALIVE_FRAME = "{\"action\":\"ping\"}";
export declare class RippleClient {
    private readonly opts;
    private readonly WS;
    private readonly listeners;
    private readonly channelState;
    private readonly seenIds;
    private readonly lastSeq;
    private readonly ownSeq;
    private readonly positionsByChannel;
    /** Chat not sent yet: one is sent at a time, the next after its answer (see `pump`). */
    private readonly queued;
    /** The chat message sent and not answered yet. */
    private inFlight;
    /** Channels joined with `join()` whose `joined` has not come: their chat waits. */
    private readonly joining;
    private ws;
    private welcome;
    private waiters;
    private closed;
    private everConnected;
    private attempt;
    private retryTimer;
    private keepaliveTimer;
    private lastSentAt;
    private pendingKeepalives;
    private newestTs;
    constructor(opts: RippleClientOptions);
    /** Resolves with the `welcome` of the current connection (or of the next one, while reconnecting). */
    connected(): Promise<WelcomeFrame>;
    /** Calls `fn` for every event of `type`; returns a function that removes it. */
    on<K extends RippleEventType>(type: K, fn: (ev: RippleEventMap[K], meta: MessageMeta) => void): () => void;
    /** The user the server knows this connection as (after `welcome`). */
    get user(): string | undefined;
    /** The channels this client is in (rejoined after every reconnect). */
    channels(): string[];
    /** Joins `channel` (a `snapshot` follows); with `since`, the chat after it comes in the snapshot. */
    join(channel: string, opts?: {
        since?: number;
    }): void;
    /** Leaves `channel`. */
    leave(channel: string): void;
    /**
     * Publishes your position in `channel`, numbered with a `seq` that keeps increasing (a
     * millisecond clock). Returns the `seq`, or `null` when not connected (positions are not queued:
     * send the next one).
     */
    position(channel: string, p: {
        x: number;
        y: number;
        z?: number;
        data?: Record<string, unknown>;
    }): number | null;
    /**
     * Publishes a chat message. Messages are sent one at a time, each after the server answered
     * the one before (`ack` or an error), so they are written in the order you called this: API
     * Gateway handles a connection's frames concurrently, in no order. While disconnected they wait
     * and go after the reconnect; one sent whose answer a reconnect cut off is sent again.
     */
    message(channel: string, text: string): void;
    /** The users in `channel` (from its snapshot, then `join` and `leave`); you included. */
    members(channel: string): string[];
    /** The latest position of each other user in `channel`. */
    positions(channel: string): Map<string, PositionEvent>;
    /** Closes the socket for good: no reconnect. */
    close(): void;
    private isOpen;
    private url;
    private open;
    private scheduleReconnect;
    /** Sends the next chat message when none is in flight and its channel's join is answered. */
    private pump;
    /** The in-flight message was answered (or given up on): the next may go. */
    private answered;
    private send;
    private startKeepalive;
    private stopKeepalive;
    private onFrame;
    private onWelcome;
    private onSnapshot;
    private onEvent;
    private rememberId;
    private emit;
}
export interface Point {
    x: number;
    y: number;
    z: number;
}
/**
 * Smooths a remote player's positions: feed every update with `push`, draw `at(now)`. It renders
 * `delayMs` in the past, between the two updates around that time (linear), so movement stays
 * smooth when updates come in bursts. Times are the server's `ts`, mapped to this clock by the
 * smallest observed delay.
 */
export declare class Interpolator {
    private readonly delayMs;
    private readonly maxSamples;
    private samples;
    private offset;
    constructor(delayMs?: number, maxSamples?: number);
    /** Adds an update (older or repeated `seq`s are ignored). */
    push(ev: {
        x: number;
        y: number;
        z?: number;
        seq: number;
        ts?: number;
    }, receivedAt?: number): void;
    /** Where to draw at local time `now`, or `null` before the first update. */
    at(now?: number): Point | null;
}
