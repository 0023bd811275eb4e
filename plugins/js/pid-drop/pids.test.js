// `node --test`: the rule without WebAssembly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PACKET, dropPids, pidAt, pidMask, pidsFromConfig, reportDropped } from './pids.js';
import { metricsOver } from '../sdk/metrics.js';

function packet(pid, fill) {
  const p = new Uint8Array(PACKET).fill(fill);
  p[0] = 0x47;
  p[1] = (pid >> 8) & 0x1f;
  p[2] = pid & 0xff;
  p[3] = 0x10;
  return p;
}

function concat(...packets) {
  const out = new Uint8Array(packets.length * PACKET);
  packets.forEach((p, i) => out.set(p, i * PACKET));
  return out;
}

test('drops exactly the listed PIDs and keeps the rest in order', () => {
  const batch = concat(packet(0, 1), packet(0x101, 2), packet(0x100, 3), packet(0x101, 4), packet(0x1fff, 5));
  const out = dropPids(batch, pidMask([0x101]));
  assert.equal(out.length, 3 * PACKET);
  assert.deepEqual([0, 1, 2].map((i) => pidAt(out, i * PACKET)), [0, 0x100, 0x1fff]);
  assert.equal(out[PACKET + 100], 3, 'payload of the kept packet unchanged');
});

test('counts what it drops per PID, and the metric follows', () => {
  const metrics = metricsOver();
  const batch = concat(packet(0x101, 1), packet(0x100, 2), packet(0x101, 3), packet(0x102, 4));
  const dropped = new Uint32Array(0x2000);
  dropPids(batch, pidMask([0x101, 0x102]), dropped);
  assert.deepEqual([dropped[0x100], dropped[0x101], dropped[0x102]], [0, 2, 1]);
  const counter = metrics.counter('packets_dropped_total', 'Dropped.', ['pid']);
  reportDropped(counter, [0x101, 0x102], dropped);
  assert.equal(metrics.value('packets_dropped_total', '257'), 2);
  assert.equal(metrics.value('packets_dropped_total', 258), 1);
  assert.equal(dropped[0x101], 0, 'reported counts start again');
  assert.throws(() => counter.inc(), /label values/);
});

test('a batch with nothing to drop is returned as it is', () => {
  const batch = concat(packet(0x100, 1), packet(0x100, 2));
  assert.equal(dropPids(batch, pidMask([0x101])), batch);
  assert.equal(dropPids(batch, pidMask([])), batch);
});

test('a batch of only dropped PIDs becomes empty', () => {
  assert.equal(dropPids(concat(packet(0x101, 1)), pidMask([0x101])).length, 0);
});

test('config: PIDs as numbers; anything else is an error naming it', () => {
  assert.deepEqual([...pidsFromConfig({ pids: [257, 8191] })], [257, 8191]);
  assert.equal(pidsFromConfig({}).size, 0);
  assert.throws(() => pidsFromConfig({ pids: [9000] }), /9000/);
  assert.throws(() => pidsFromConfig({ pids: ['0x101'] }), /0x101/);
  assert.throws(() => pidsFromConfig({ pids: 257 }), /list/);
});
