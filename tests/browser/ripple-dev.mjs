// Starts and stops `target/debug/ripple dev` for the Node tests (the browser test of the demo page
// and the client library's tests in clients/js). Build it first: `cargo build -p ripple`.
//
// Environment:
//   RIPPLE_TEST_DYNAMODB_ENDPOINT  use this DynamoDB (with a fresh table) instead of letting
//                                  `ripple dev` start DynamoDB Local itself
//   RIPPLE_BIN                     the ripple binary (default target/debug/ripple)

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RIPPLE_BIN = process.env.RIPPLE_BIN || path.join(ROOT, 'target', 'debug', 'ripple');
const READY_TIMEOUT_MS = 120_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `ripple dev --port 0` and resolves with { child, base, stderr() } once it is ready. */
export async function startRipple(extraArgs = []) {
  if (!existsSync(RIPPLE_BIN)) {
    throw new Error(`${RIPPLE_BIN} not found: build it first with \`cargo build -p ripple\``);
  }
  const args = ['dev', '--port', '0', '--host', '127.0.0.1', ...extraArgs];
  if (process.env.RIPPLE_TEST_DYNAMODB_ENDPOINT) {
    args.push('--dynamodb-endpoint', process.env.RIPPLE_TEST_DYNAMODB_ENDPOINT,
      '--table', `demo-${randomBytes(6).toString('hex')}`);
  }
  // Its own process group, so that a last-resort SIGKILL also takes DynamoDB Local with it.
  const child = spawn(RIPPLE_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '', err = '';
  const MAX = 256 * 1024;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { err = (err + d).slice(-MAX); });
  child.stdout.setEncoding('utf8');
  const stderr = () => err;
  const describeFailure = (why) =>
    `ripple dev (${RIPPLE_BIN} ${args.join(' ')}) ${why}\n` +
    `--- stdout ---\n${out || '(empty)'}\n--- stderr ---\n${err || '(empty)'}`;

  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(describeFailure(
      `printed no ready line within ${READY_TIMEOUT_MS / 1000} s`))), READY_TIMEOUT_MS);
    const onData = (d) => {
      out = (out + d).slice(-MAX);
      const m = out.match(/ripple dev ready: ws:\/\/([^/\s]+)\//);
      if (m) finish(null, `http://${m[1]}`);
    };
    const onExit = (code, signal) =>
      finish(new Error(describeFailure(`exited before it was ready (code ${code}, signal ${signal})`)));
    const onError = (e) => finish(new Error(describeFailure(`could not be started: ${e.message}`)));
    function finish(e, v) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      // keep draining stdout so the child never blocks on a full pipe
      child.stdout.on('data', (d) => { out = (out + d).slice(-MAX); });
      if (e) reject(e); else resolve(v);
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  }).catch(async (e) => { await stopRipple(child); throw e; });

  const host = new URL(base).hostname;
  if (host !== '127.0.0.1') {
    await stopRipple(child);
    throw new Error(`ripple dev listens on ${host}, not 127.0.0.1; refusing to go on`);
  }
  return { child, base, stderr };
}

/** SIGINT, then SIGKILL (to the whole process group) if it has not exited within 5 s. */
export async function stopRipple(child) {
  if (!child || child.pid === undefined) return;
  const exited = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : once(child, 'exit');
  if (child.exitCode === null && child.signalCode === null) {
    try { child.kill('SIGINT'); } catch { /* already gone */ }
  }
  const inTime = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
  if (!inTime) {
    console.error('ripple dev did not exit within 5 s of SIGINT; sending SIGKILL');
    killGroup(child.pid);
    await Promise.race([exited, sleep(5000)]);
  }
  // Anything of its group still alive (e.g. DynamoDB Local it started) is left over: say so, and end it.
  try {
    process.kill(-child.pid, 0);
    console.error(`processes of ripple dev's group ${child.pid} outlived it; sending them SIGKILL`);
    killGroup(child.pid);
  } catch { /* none left */ }
}

export function killGroup(pid) {
  try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
}
