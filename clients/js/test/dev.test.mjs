// The client library against a real `ripple dev` (gateway, stream trigger, DynamoDB Local), on
// Node 20 with the `ws` package as its WebSocket. Build `ripple` first (`cargo build -p ripple`);
// `bash scripts/client-test.sh` does everything.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { RippleClient } from '../dist/ripple-client.js';
import { RIPPLE_BIN, startRipple, stopRipple } from '../../../tests/browser/ripple-dev.mjs';

const WAIT_MS = 30_000;

/** Resolves with the first `type` event of `client` matching `pred` (those already seen count). */
function waitFor(client, log, type, pred, what) {
  const hit = log[type].find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`${what}: not seen within ${WAIT_MS / 1000} s; got ${JSON.stringify(log[type])}`)); }, WAIT_MS);
    const off = client.on(type, (ev) => { if (pred(ev)) { clearTimeout(timer); off(); resolve(ev); } });
  });
}

describe('RippleClient against ripple dev', () => {
  let ripple;
  const clients = [];
  const channel = `client-${randomBytes(4).toString('hex')}`;

  /** A client logging everything it emits. */
  function open(user, opts = {}) {
    const client = new RippleClient({ url: ripple.base.replace('http', 'ws') + '/', user, channels: [channel], WebSocket, ...opts });
    const log = { welcome: [], snapshot: [], message: [], position: [], join: [], leave: [], error: [], reconnecting: [], reconnected: [] };
    for (const type of Object.keys(log)) client.on(type, (ev) => log[type].push(ev));
    clients.push(client);
    return { client, log };
  }

  before(async () => { ripple = await startRipple(); });
  after(async () => {
    for (const c of clients) c.close();
    if (ripple) await stopRipple(ripple.child);
  });

  let alice, bob;

  test('connect: connected() resolves with the welcome', async () => {
    alice = open('alice');
    const welcome = await alice.client.connected();
    assert.equal(welcome.user, 'alice');
    assert.ok(welcome.connectionId);
    // (alice hears events once she is in the channel's roster, which her snapshot tells)
    await waitFor(alice.client, alice.log, 'snapshot', (s) => s.channel === channel, "alice's snapshot");
    bob = open('bob');
    await bob.client.connected();
    await waitFor(bob.client, bob.log, 'snapshot', (s) => s.channel === channel, "bob's snapshot");
  });

  test('publish and receive: a message and a position cross from alice to bob', async () => {
    await waitFor(alice.client, alice.log, 'join', (j) => j.user === 'bob', 'bob joining on alice\'s side');
    alice.client.message(channel, 'hello bob');
    const seq = alice.client.position(channel, { x: 3, y: 4, data: { hp: 10 } });
    const m = await waitFor(bob.client, bob.log, 'message', (e) => e.text === 'hello bob', 'the message');
    assert.equal(m.user, 'alice');
    const p = await waitFor(bob.client, bob.log, 'position', (e) => e.user === 'alice', 'the position');
    assert.deepEqual({ x: p.x, y: p.y, seq: p.seq, data: p.data }, { x: 3, y: 4, seq, data: { hp: 10 } });
  });

  test('presence: members() follows snapshot, join and leave', async () => {
    assert.deepEqual(bob.client.members(channel).sort(), ['alice', 'bob']);
    const carol = open('carol');
    await carol.client.connected();
    await waitFor(bob.client, bob.log, 'join', (j) => j.user === 'carol', 'carol joining');
    assert.deepEqual(bob.client.members(channel).sort(), ['alice', 'bob', 'carol']);
    await waitFor(carol.client, carol.log, 'snapshot', (s) => s.channel === channel, "carol's snapshot");
    assert.deepEqual(carol.client.members(channel).sort(), ['alice', 'bob', 'carol']);
    carol.client.close();
    await waitFor(bob.client, bob.log, 'leave', (l) => l.user === 'carol', 'carol leaving');
    assert.deepEqual(bob.client.members(channel).sort(), ['alice', 'bob']);
  });

  test('the server drops dave: he reconnects, resumes, and gets the chat sent meanwhile once', async () => {
    // GIVEN dave, with a reconnect delay long enough for alice to write while he is away
    const dropped = open('dave', { reconnectMinMs: 2000, reconnectMaxMs: 2000 });
    const first = await dropped.client.connected();
    await waitFor(dropped.client, dropped.log, 'snapshot', (s) => s.channel === channel, "dave's snapshot");
    alice.client.message(channel, 'before the drop');
    await waitFor(dropped.client, dropped.log, 'message', (e) => e.text === 'before the drop', 'the message before the drop');
    // WHEN the server drops his socket
    const res = await fetch(`${ripple.base}/@connections/${encodeURIComponent(first.connectionId)}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    await waitFor(dropped.client, dropped.log, 'reconnecting', () => true, 'the client noticing the drop');
    // AND alice writes while he is away
    alice.client.message(channel, 'while dave was away');
    // THEN he reconnects with a new connection and gets it
    const again = await waitFor(dropped.client, dropped.log, 'reconnected', () => true, 'the reconnect');
    assert.notEqual(again.connectionId, first.connectionId);
    await waitFor(dropped.client, dropped.log, 'message', (e) => e.text === 'while dave was away', 'the missed message');
    // AND, once a later message arrived, each came exactly once
    alice.client.message(channel, 'after the reconnect');
    await waitFor(dropped.client, dropped.log, 'message', (e) => e.text === 'after the reconnect', 'the message after the reconnect');
    const texts = dropped.log.message.map((m) => m.text);
    assert.deepEqual(texts, ['before the drop', 'while dave was away', 'after the reconnect']);
    assert.deepEqual(dropped.client.members(channel).sort(), ['alice', 'bob', 'dave']);
    // AND his positions still go through (seq kept increasing)
    dropped.client.position(channel, { x: 1, y: 1 });
    await waitFor(alice.client, alice.log, 'position', (p) => p.user === 'dave', "dave's position after his reconnect");
  });

  test('a repeated or stale frame from the server is dropped', async () => {
    const seen = bob.log.message.find((m) => m.text === 'hello bob');
    const position = bob.log.position.find((p) => p.user === 'alice');
    const id = (await bob.client.connected()).connectionId;
    // WHEN the server posts an old message again and an older position of alice
    const stale = { ...position, seq: position.seq - 1, x: 999 };
    const marker = { ...seen, id: `marker-${randomBytes(4).toString('hex')}`, text: 'marker' };
    const res = await fetch(`${ripple.base}/@connections/${encodeURIComponent(id)}`, {
      method: 'POST', body: JSON.stringify({ type: 'events', events: [seen, position, stale, marker] }),
    });
    assert.equal(res.status, 200);
    await waitFor(bob.client, bob.log, 'message', (m) => m.text === 'marker', 'the marker after the repeats');
    // THEN neither repeat nor the stale position was emitted
    assert.equal(bob.log.message.filter((m) => m.id === seen.id).length, 1);
    assert.deepEqual(bob.log.position.filter((p) => p.user === 'alice').map((p) => p.seq), [position.seq]);
    assert.equal(bob.client.positions(channel).get('alice').x, 3);
  });

  test('ripple publish reaches the members as one message from `server`', async () => {
    const { stdout } = await promisify(execFile)(RIPPLE_BIN, ['publish', '--dev', ripple.base, '--channel', channel, '--text', 'from the backend']);
    assert.match(stdout, /published message/);
    for (const c of [alice, bob]) {
      const m = await waitFor(c.client, c.log, 'message', (e) => e.text === 'from the backend', 'the published message');
      assert.equal(m.user, 'server');
      assert.equal(c.log.message.filter((e) => e.text === 'from the backend').length, 1);
    }
  });

  test('nobody connects as the reserved name', async () => {
    const server = open('server', { reconnectMinMs: 60_000 });
    const why = await waitFor(server.client, server.log, 'reconnecting', () => true, 'the refused upgrade');
    assert.equal(server.log.welcome.length, 0);
    assert.ok(why.code !== 1000);
    server.client.close();
  });
});
