// Unit tests of the client's merging rules, with a fake socket playing the server: duplicate and
// stale frames, events before their snapshot, reconnect URL, keepalive, chat sent in order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RippleClient, Interpolator } from '../dist/ripple-client.js';
import { FakeServer } from './fake-socket.mjs';

const welcome = (user = 'alice', id = 'c1=') => ({ type: 'welcome', connectionId: id, user });
const pos = (user, seq, x = seq) => ({ type: 'position', channel: 'arena', user, x, y: 0, z: 0, seq, ts: 1795000000000 + seq });
const msg = (id, text, ts = 1795000000100) => ({ type: 'message', channel: 'arena', user: 'bob', text, id, ts });
const events = (...evs) => ({ type: 'events', events: evs });
const snapshot = (extra = {}) => ({ type: 'snapshot', channel: 'arena', members: ['alice', 'bob'], positions: [], ...extra });

async function connectedClient(opts = {}) {
  const server = new FakeServer();
  const client = new RippleClient({ url: 'ws://ripple.test/', user: 'alice', channels: ['arena'], WebSocket: server.WebSocket, reconnectMinMs: 1, reconnectMaxMs: 5, ...opts });
  const seen = { message: [], position: [], join: [], leave: [], error: [], reconnecting: [], reconnected: [] };
  for (const type of Object.keys(seen)) client.on(type, (ev, meta) => seen[type].push({ ...ev, source: meta.source }));
  const sock = await server.connection(1);
  sock.deliver(welcome());
  await client.connected();
  return { server, client, sock, seen };
}

test('a repeated message (same id) is emitted once, live or from a snapshot', async () => {
  // GIVEN a connected client
  const { client, sock, seen } = await connectedClient();
  // WHEN the same message comes twice in events and once more in a snapshot
  sock.deliver(events(msg('m1', 'hi')));
  sock.deliver(events(msg('m1', 'hi'), msg('m2', 'again')));
  sock.deliver(snapshot({ messages: [msg('m1', 'hi'), msg('m2', 'again')] }));
  // THEN each is emitted once, in order
  assert.deepEqual(seen.message.map((m) => m.id), ['m1', 'm2']);
  client.close();
});

test('a position not newer than the last emitted one (by seq, per channel and user) is dropped', async () => {
  const { client, sock, seen } = await connectedClient();
  sock.deliver(events(pos('bob', 5), pos('carol', 1)));
  // a repeat, an older one, and a newer one for bob; carol's own order is separate
  sock.deliver(events(pos('bob', 5), pos('bob', 3), pos('carol', 2), pos('bob', 9)));
  // a snapshot carrying an older position of bob does not move him back
  sock.deliver(snapshot({ positions: [pos('bob', 7)] }));
  assert.deepEqual(seen.position.map((p) => `${p.user}:${p.seq}`), ['bob:5', 'carol:1', 'carol:2', 'bob:9']);
  assert.equal(client.positions('arena').get('bob').seq, 9);
  client.close();
});

test('presence: events before the snapshot are merged on top of it', async () => {
  const { client, sock, seen } = await connectedClient();
  // GIVEN carol's join and bob's leave arrive before the snapshot that still lists bob
  sock.deliver(events({ type: 'join', channel: 'arena', user: 'carol' }, { type: 'leave', channel: 'arena', user: 'bob' }));
  sock.deliver(snapshot({ members: ['alice', 'bob'] }));
  // THEN the set is alice and carol
  assert.deepEqual(client.members('arena').sort(), ['alice', 'carol']);
  // AND a join repeating a member is not emitted again
  sock.deliver(events({ type: 'join', channel: 'arena', user: 'carol' }));
  assert.deepEqual(seen.join.map((j) => j.user), ['carol']);
  client.close();
});

test('chat that comes before its channel\'s snapshot is emitted after the older messages the snapshot brings', async () => {
  // GIVEN a client (re)connecting: a live message reaches it before the snapshot that recovers
  // what it missed (they are posted by different batches)
  const { client, sock, seen } = await connectedClient();
  sock.deliver(events(msg('m3', 'newest', 1795000000300)));
  assert.deepEqual(seen.message, [], 'held until the snapshot');
  // WHEN the snapshot comes, carrying the missed messages (and the newest one again)
  sock.deliver(snapshot({ messages: [msg('m2', 'missed 2', 1795000000200), msg('m1', 'missed 1', 1795000000100), msg('m3', 'newest', 1795000000300)] }));
  // THEN every message is emitted once, oldest first
  assert.deepEqual(seen.message.map((m) => m.id), ['m1', 'm2', 'm3']);
  // AND later chat is live again
  sock.deliver(events(msg('m4', 'later', 1795000000400)));
  assert.deepEqual(seen.message.map((m) => `${m.id}:${m.source}`), ['m1:snapshot', 'm2:snapshot', 'm3:snapshot', 'm4:live']);
  client.close();
});

test('after a drop it reconnects with its channels, resume=1 and since = the newest message ts', async () => {
  const { server, client, sock, seen } = await connectedClient();
  sock.deliver(snapshot());
  client.join('lobby');
  sock.deliver(events(msg('m1', 'old', 1795000000100), msg('m2', 'newer', 1795000000200)));
  // WHEN the server drops the socket
  sock.drop(1001, 'going away');
  // THEN the client tries again
  const again = await server.connection(2);
  const url = new URL(again.url);
  assert.deepEqual(url.searchParams.getAll('channel'), ['arena', 'lobby']);
  assert.equal(url.searchParams.get('resume'), '1');
  assert.equal(url.searchParams.get('since'), '1795000000200');
  assert.equal(url.searchParams.get('user'), 'alice');
  assert.equal(seen.reconnecting[0].code, 1001);
  // AND a message written while away is queued and sent after the welcome
  client.message('arena', 'sent while offline');
  assert.deepEqual(again.sent, []);
  again.deliver(welcome('alice', 'c2='));
  await client.connected();
  assert.deepEqual(again.sent, [{ action: 'message', channel: 'arena', text: 'sent while offline' }]);
  assert.equal(seen.reconnected.length, 1);
  client.close();
});

test('chat goes one message at a time, each after the answer to the one before, and waits for its join', async () => {
  // GIVEN a connected client (API Gateway handles a connection's frames in no order)
  const { client, sock } = await connectedClient();
  const chat = () => sock.sent.filter((f) => f.action === 'message').map((f) => f.text);
  // WHEN three messages are published at once
  client.message('arena', 'one');
  client.message('arena', 'two');
  client.message('arena', 'three');
  // THEN only the first is sent; each answer (an ack, or an error) lets the next go
  assert.deepEqual(chat(), ['one']);
  sock.deliver({ type: 'ack', channel: 'arena', id: 'm1', ts: 1795000000000 });
  assert.deepEqual(chat(), ['one', 'two']);
  sock.deliver({ type: 'error', code: 'rate_limited', message: 'slow down' });
  assert.deepEqual(chat(), ['one', 'two', 'three']);
  // WHEN it joins a channel and publishes to it at once
  client.join('lobby');
  sock.deliver({ type: 'ack', channel: 'arena', id: 'm3', ts: 1795000000001 });
  client.message('lobby', 'hello lobby');
  // THEN the message waits for `joined` (sent before it, it could be refused not_member)
  assert.deepEqual(chat(), ['one', 'two', 'three']);
  sock.deliver({ type: 'joined', channel: 'lobby' });
  assert.deepEqual(chat(), ['one', 'two', 'three', 'hello lobby']);
  client.close();
});

test('a message whose answer a drop cut off is sent again after the reconnect', async () => {
  const { server, client, sock } = await connectedClient();
  client.message('arena', 'maybe lost');
  assert.equal(sock.sent.length, 1);
  // WHEN the socket drops before the ack
  sock.drop(1006, 'lost');
  const again = await server.connection(2);
  again.deliver(welcome('alice', 'c2='));
  await client.connected();
  // THEN it goes again on the new connection
  assert.deepEqual(again.sent, [{ action: 'message', channel: 'arena', text: 'maybe lost' }]);
  client.close();
});

test('own positions get a seq that keeps increasing, from a millisecond clock', async () => {
  const { client, sock } = await connectedClient();
  const a = client.position('arena', { x: 1, y: 2 });
  const b = client.position('arena', { x: 1, y: 3, data: { hp: 3 } });
  assert.ok(a >= Date.now() - 60_000 && b > a, `${a} then ${b}`);
  assert.deepEqual(sock.sent[1], { action: 'position', channel: 'arena', x: 1, y: 3, seq: b, data: { hp: 3 } });
  assert.throws(() => client.position('arena', { x: NaN, y: 0 }), /bad position/);
  client.close();
});

test('the keepalive frame goes out when idle and its unknown_action answer is swallowed', async () => {
  const { client, sock, seen } = await connectedClient({ keepaliveMs: 40 });
  for (let i = 0; i < 100 && sock.sent.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(sock.sent[0], { action: 'ping' });
  sock.deliver({ type: 'error', code: 'unknown_action', message: 'unknown action "ping"' });
  assert.deepEqual(seen.error, []);
  // a real error still comes through
  sock.deliver({ type: 'error', code: 'rate_limited', message: 'slow down' });
  assert.deepEqual(seen.error.map((e) => e.code), ['rate_limited']);
  client.close();
});

test('a frame that is not the protocol is reported, not used', async () => {
  const { client, sock, seen } = await connectedClient();
  sock.deliver('not json');
  sock.deliver({ type: 'events', events: [{ type: 'position', channel: 'arena', user: 'bob', x: 'far', y: 0, z: 0, seq: 1, ts: 1 }] });
  assert.deepEqual(seen.error.map((e) => e.code), ['bad_frame', 'bad_frame']);
  assert.deepEqual(seen.position, []);
  client.close();
});

test('close() stops for good: no reconnect', async () => {
  const { server, client } = await connectedClient();
  client.close();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(server.sockets.length, 1);
  await assert.rejects(client.connected(), /closed/);
});

test('the interpolator draws between updates and ignores older ones', () => {
  const it = new Interpolator(100);
  assert.equal(it.at(0), null);
  it.push({ x: 0, y: 0, seq: 1, ts: 1000 }, 1000);
  it.push({ x: 10, y: 20, seq: 2, ts: 1100 }, 1100);
  it.push({ x: 99, y: 99, seq: 1, ts: 1200 }, 1200); // stale: ignored
  assert.deepEqual(it.at(1150), { x: 5, y: 10, z: 0 }); // renders at 1050: halfway
  assert.deepEqual(it.at(5000), { x: 10, y: 20, z: 0 }); // holds the last
  assert.deepEqual(it.at(900), { x: 0, y: 0, z: 0 });
});
