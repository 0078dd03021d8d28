// A WebSocket stand-in for unit tests: records what the client sends and lets the test play the
// server (deliver frames, close the socket). Each `new` is one connection attempt.

export class FakeServer {
  constructor() {
    this.sockets = [];
    const server = this;
    this.WebSocket = class FakeSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        server.sockets.push(this);
        queueMicrotask(() => { this.readyState = 1; this.onopen?.({}); });
      }
      send(data) { this.sent.push(JSON.parse(data)); }
      close(code = 1000, reason = '') { this.drop(code, reason); }
      /** The server sends `frame` (an object, or raw text). */
      deliver(frame) { this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) }); }
      /** The connection ends (as when the server drops it). */
      drop(code = 1006, reason = '') {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
    };
  }
  get last() { return this.sockets[this.sockets.length - 1]; }
  /** Waits until the client opened connection number `n` (1-based). */
  async connection(n) {
    for (let i = 0; i < 500 && this.sockets.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    if (this.sockets.length < n) throw new Error(`the client did not open connection ${n}`);
    const s = this.sockets[n - 1];
    await new Promise((r) => setTimeout(r, 0));
    return s;
  }
}
