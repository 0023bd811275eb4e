// acemux selector plugin in JavaScript: players by address prefix get a
// tier, and engines labelled with that tier carry their streams. Built
// with componentize-js against acemux's `wit/` (world `selector-plugin`);
// the rule lives in `tiers.js`.

import { log, config } from 'acemux:plugin/host@0.3.0';
import { choose, settingsFromConfig, tierOf } from './tiers.js';

// Read at the first selection, not at the module's top level: the module
// is evaluated once while the component is built, where no host exists.
let settings = null;
// The list last given to `setEngines`; candidates are positions in it.
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
      const e = engines[c.engine];
      if (e === undefined) continue;
      views.push({
        id: e.id,
        labels: e.labels,
        forwarded: e.forwarded,
        active: c.activeStreams,
        pending: c.pendingStreams,
        capacity: c.capacity,
      });
    }
    const chosen = choose(settings, tier, views);
    // (No log line per call: building one costs the interpreter more than
    // the choice, even when acemux does not print it.)
    return chosen === null ? { tag: 'no-opinion' } : { tag: 'engine', val: chosen };
  },
};
