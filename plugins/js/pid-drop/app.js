// acemux filter plugin in JavaScript: drops the PIDs listed in its
// `[config]` from every stream, before acemux's shared buffer, so no
// player receives them. Built with componentize-js against acemux's
// `wit/` (world `filter-plugin`); the rule lives in `pids.js`.

import { log, config } from 'acemux:plugin/host@0.9.0';
import { dropPids, pidMask, pidsFromConfig } from './pids.js';

// Read when the first stream starts, not at the module's top level: the
// module is evaluated once while the component is built, where no host
// exists to answer `config()`.
let mask = null;

function pidsToDrop() {
  if (mask === null) {
    const pids = pidsFromConfig(JSON.parse(config()));
    log('info', `dropping PIDs ${[...pids].join(', ') || '(none)'}`);
    mask = pidMask(pids);
  }
  return mask;
}

class StreamFilter {
  constructor(stream) {
    this.mask = pidsToDrop();
    log('debug', `filtering ${stream.contentKey}`);
  }

  process(packets) {
    return dropPids(packets, this.mask);
  }
}

export const filter = { StreamFilter };
