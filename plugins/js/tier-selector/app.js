// acemux selector plugin in JavaScript: players by address prefix get a
// tier, and engines labelled with that tier carry their streams. Built
// with componentize-js against acemux's `wit/` (world `selector-plugin`);
// the rule lives in `tiers.js`.

import { log, config } from 'acemux:plugin/host@0.10.0';
import { choose, settingsFromConfig, tierOf } from './tiers.js';

// Read at the first selection, not at the module's top level: the module
// is evaluated once while the component is built, where no host exists.
let settings = null;
// The list last given to `setEngines`; candidates name positions in it.
let engines = [];

export const selector = {
  setEngines(list) {
    engines = list;
  },

  select(request, candidates) {
    if (settings === null) {
      settings = settingsFromConfig(JSON.parse(config()));
      log('info', `tiers by address prefix: ${JSON.stringify(settings.tiers)}`);
    }
    const tier = tierOf(settings, request.clientAddress);
    const views = [];
    for (const c of candidates) {
      const e = engines[c.position];
      if (e === undefined) continue;
      views.push({
        id: e.id,
        position: c.position,
        labels: e.labels,
        forwarded: e.forwarded,
        active: c.running,
        pending: c.starting,
        capacity: e.capacity,
      });
    }
    const chosen = choose(settings, tier, views);
    // (No log line per call: building one costs the interpreter more than
    // the choice, even when acemux does not print it.)
    if (chosen === null) return { tag: 'no-opinion' };
    // acemux is answered with the engine's position in its list.
    return { tag: 'engine', val: views.find((v) => v.id === chosen).position };
  },
};
