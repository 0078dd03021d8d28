// With every `$disconnect` lost (`ripple dev --fault disconnect-loss=1`, as AWS may lose any of
// them), a client whose connection vanished reconnects, gets its channels and the chat it missed,
// and the old connections' presence settles at the first post after API Gateway closed them
// (docs/protocol.md, "Resume"). The idle timeout is 4 s here instead of 10 minutes. A client that
// stops reading is closed as a slow consumer once 4 frames wait for it (`--outbound-frames 4`),
// and the library brings back what it missed (docs/protocol.md, "Slow consumers").

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { RippleClient } from '../dist/ripple-client.js';
import { startRipple, stopRipple } from '../../../tests/browser/ripple-dev.mjs';

const WAIT_MS = 30_000;
const IDLE_TIMEOUT_S = 4;

let ripple;
const clients = [];
const channel = `lost-${randomBytes(4).toString('hex')}`;

function open(user, opts = {}, channels = [channel]) {
  const client = new RippleClient({
    url: ripple.base.replace('http', 'ws') + '/', user, channels, WebSocket, ...opts,
  });
  const log = { snapshot: [], message: [], join: [], leave: [], reconnected: [] };
  for (const type of Object.keys(log)) client.on(type, (ev) => log[type].push(ev));
  clients.push(client);
  return { client, log };
}

function waitFor(who, type, pred, what) {
  const hit = who.log[type].find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`${what}: not seen within ${WAIT_MS / 1000} s; got ${JSON.stringify(who.log[type])}`)); }, WAIT_MS);
    const off = who.client.on(type, (ev) => { if (pred(ev)) { clearTimeout(timer); off(); resolve(ev); } });
  });
}

async function until(done, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS / 1000} s: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// `ripple dev`'s test controls: `vanish` (gone without a close), `stall` (stops reading).
async function local(control, who) {
  const { connectionId } = await who.client.connected();
  const res = await fetch(`${ripple.base}/_local/${control}/${encodeURIComponent(connectionId)}`, { method: 'POST' });
  assert.equal(res.status, 204);
  return connectionId;
}
const vanish = (who) => local('vanish', who);

before(async () => {
  ripple = await startRipple([
    '--fault', 'disconnect-loss=1', '--idle-timeout-secs', String(IDLE_TIMEOUT_S), '--outbound-frames', '4',
  ]);
});
after(async () => {
  for (const c of clients) c.close();
  if (ripple) await stopRipple(ripple.child);
});

test('every $disconnect lost: a vanished client reconnects with its channels and the chat it missed; the gone ones leave', async () => {
  // GIVEN frank (keeping his connection alive), erin (reconnecting quickly) and gina (not coming
  // back), all in one channel, each having seen one message
  const keepalive = { keepaliveMs: 1000 };
  const frank = open('frank', keepalive);
  const erin = open('erin', { ...keepalive, reconnectMinMs: 200, reconnectMaxMs: 200 });
  const gina = open('gina', { ...keepalive, reconnectMinMs: 600_000, reconnectMaxMs: 600_000 });
  for (const who of [frank, erin, gina]) await waitFor(who, 'snapshot', (s) => s.channel === channel, 'the snapshot');
  await until(() => frank.client.members(channel).length === 3, () => `all three in frank's members: ${frank.client.members(channel)}`);
  frank.client.message(channel, 'before');
  for (const who of [erin, gina]) await waitFor(who, 'message', (m) => m.text === 'before', 'the first message');

  // WHEN erin's and gina's connections vanish without a close (their $disconnect never comes)
  const erinsOld = await vanish(erin);
  await vanish(gina);
  // AND frank writes while they are gone
  frank.client.message(channel, 'while they were gone');

  // THEN API Gateway closes them at the idle timeout, and erin reconnects with a new connection
  const again = await waitFor(erin, 'reconnected', () => true, "erin's reconnect");
  assert.notEqual(again.connectionId, erinsOld);
  // AND gets the message she missed, from the table (channel= and since= in her reconnect)
  await waitFor(erin, 'message', (m) => m.text === 'while they were gone', 'the missed message');
  // AND gina is still announced present: nothing has told Ripple yet
  assert.deepEqual(frank.client.members(channel).sort(), ['erin', 'frank', 'gina']);

  // WHEN frank writes again (the first post to the closed connections: answered 410)
  frank.client.message(channel, 'after');
  // THEN gina's old connection is removed and her leave announced; erin, connected again, stays
  await waitFor(frank, 'leave', (l) => l.user === 'gina', "gina's leave");
  assert.deepEqual(frank.client.members(channel).sort(), ['erin', 'frank']);
  // AND erin got every message exactly once
  await waitFor(erin, 'message', (m) => m.text === 'after', 'the message after');
  assert.deepEqual(erin.log.message.map((m) => m.text), ['before', 'while they were gone', 'after']);
  assert.equal(frank.log.leave.filter((l) => l.user === 'erin').length, 0, 'erin never left on frank\'s side');
});

test('a member that stops reading is closed as a slow consumer and gets back every message it missed, once', async () => {
  // GIVEN hank and ivan in a channel of their own, ivan having seen one message
  const room = `${channel}-slow`;
  const hank = open('hank', { keepaliveMs: 1000 }, [room]);
  const ivan = open('ivan', { reconnectMinMs: 200, reconnectMaxMs: 200 }, [room]);
  for (const who of [hank, ivan]) await waitFor(who, 'snapshot', (s) => s.channel === room, 'the snapshot');
  hank.client.message(room, 'before');
  await waitFor(ivan, 'message', (m) => m.text === 'before', 'the first message');

  // WHEN ivan's client stops reading its socket (a frozen tab)
  const ivansOld = await local('stall', ivan);
  // AND hank chats on, a line every 300 ms, until ivan is back
  const sent = [];
  while (ivan.log.reconnected.length === 0 && sent.length < 40) {
    sent.push(`line ${sent.length}`);
    hank.client.message(room, sent.at(-1));
    await new Promise((r) => setTimeout(r, 300));
  }

  // THEN fanout closed ivan once 4 frames waited for him, and the library reconnected him
  assert.ok(sent.length < 40, `ivan not closed after ${sent.length} lines`);
  assert.notEqual(ivan.log.reconnected[0].connectionId, ivansOld);
  // AND he gets every line he missed from the table, then the live ones, each once, in order
  hank.client.message(room, 'after');
  await waitFor(ivan, 'message', (m) => m.text === 'after', 'the message after');
  assert.deepEqual(ivan.log.message.map((m) => m.text), ['before', ...sent, 'after']);
});
