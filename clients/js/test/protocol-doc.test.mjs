// The library's frame types against the contract: every JSON example in docs/protocol.md is
// extracted and checked with the library's guards (isClientFrame / isServerFrame), which mirror
// its TypeScript types. A frame the document shows that the library would refuse fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isClientFrame, isServerFrame } from '../dist/ripple-client.js';

const DOC = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));

/** Every ```json block of the document. */
function jsonBlocks(markdown) {
  return [...markdown.matchAll(/^\s*```json\n([\s\S]*?)^\s*```/gm)].map((m) => m[1]);
}

/** Splits a block holding several JSON values one after another into the values. */
function jsonValues(block) {
  const values = [];
  let depth = 0, start = -1, inString = false, escaped = false;
  for (let i = 0; i < block.length; i++) {
    const c = block[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') { if (depth++ === 0) start = i; }
    else if (c === '}' && --depth === 0) values.push(JSON.parse(block.slice(start, i + 1)));
  }
  assert.equal(depth, 0, `unbalanced JSON in ${block}`);
  return values;
}

const examples = jsonBlocks(readFileSync(DOC, 'utf8')).flatMap(jsonValues);
const clientFrames = examples.filter((v) => 'action' in v);
const serverFrames = examples.filter((v) => 'type' in v && !('action' in v));

test('the document shows every client action and every server frame type', () => {
  assert.deepEqual([...new Set(clientFrames.map((f) => f.action))].sort(), ['join', 'leave', 'message', 'position']);
  assert.deepEqual([...new Set(serverFrames.map((f) => f.type))].sort(), ['ack', 'error', 'events', 'joined', 'left', 'snapshot', 'welcome']);
  const eventTypes = serverFrames.filter((f) => f.type === 'events').flatMap((f) => f.events.map((e) => e.type));
  assert.deepEqual([...new Set(eventTypes)].sort(), ['join', 'leave', 'message', 'position']);
});

test("every client frame example passes the library's ClientFrame guard", () => {
  for (const f of clientFrames) assert.ok(isClientFrame(f), `refused: ${JSON.stringify(f)}`);
});

test("every server frame example passes the library's ServerFrame guard", () => {
  for (const f of serverFrames) assert.ok(isServerFrame(f), `refused: ${JSON.stringify(f)}`);
});

test('the guards are not blind: each example without a required field is refused', () => {
  const without = (f, key) => { const g = structuredClone(f); delete g[key]; return g; };
  for (const f of clientFrames) {
    for (const key of Object.keys(f).filter((k) => !['z', 'since', 'data'].includes(k))) {
      assert.ok(!isClientFrame(without(f, key)), `accepted without ${key}: ${JSON.stringify(f)}`);
    }
  }
  for (const f of serverFrames) {
    for (const key of Object.keys(f).filter((k) => k !== 'messages')) {
      assert.ok(!isServerFrame(without(f, key)), `accepted without ${key}: ${JSON.stringify(f)}`);
    }
  }
  const events = serverFrames.find((f) => f.type === 'events');
  for (const [i, ev] of events.events.entries()) {
    for (const key of Object.keys(ev)) {
      const broken = structuredClone(events);
      delete broken.events[i][key];
      assert.ok(!isServerFrame(broken), `accepted an event without ${key}: ${JSON.stringify(ev)}`);
    }
  }
});
