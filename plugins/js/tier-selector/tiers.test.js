// `node --test`: the rule without WebAssembly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choose, settingsFromConfig, tierOf } from './tiers.js';

const settings = settingsFromConfig({ tiers: { '10.': 'silver', '10.9.': 'gold' }, default: 'bronze' });

function engine(id, tier, active = 0, extra = {}) {
  return { id, labels: tier ? [['tier', tier]] : [], forwarded: false, active, pending: 0, capacity: 10, ...extra };
}

test('the longest address prefix gives the tier; others get the default', () => {
  assert.equal(tierOf(settings, '10.9.1.2:5000'), 'gold');
  assert.equal(tierOf(settings, '10.1.1.2:5000'), 'silver');
  assert.equal(tierOf(settings, '192.0.2.1:5000'), 'bronze');
  assert.equal(tierOf(settings, undefined), 'bronze');
  assert.equal(tierOf(settingsFromConfig({}), '10.0.0.1:1'), null);
});

test('the least loaded engine of the tier, forwarded first', () => {
  const engines = [engine('a:1', 'gold', 3), engine('b:1', 'gold', 1), engine('c:1', 'silver', 0)];
  assert.equal(choose(settings, 'gold', engines), 'b:1');
  engines[0].forwarded = true;
  assert.equal(choose(settings, 'gold', engines), 'a:1');
  assert.equal(choose(settings, 'silver', engines), 'c:1');
});

test('no engine of the tier, or no tier: no opinion', () => {
  assert.equal(choose(settings, 'gold', [engine('a:1', 'silver')]), null);
  assert.equal(choose(settings, null, [engine('a:1', 'gold')]), null);
});

test('config errors name the setting', () => {
  assert.throws(() => settingsFromConfig({ tiers: ['x'] }), /tiers/);
  assert.throws(() => settingsFromConfig({ tiers: { '10.': 1 } }), /10\./);
  assert.throws(() => settingsFromConfig({ label: 3 }), /label/);
});
