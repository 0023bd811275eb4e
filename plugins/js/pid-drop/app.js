// acemux filter plugin in JavaScript: drops the PIDs listed in its
// `[config]` from every stream, before acemux's shared buffer, so no
// player receives them. Built with componentize-js against acemux's
// `wit/` (world `filter-plugin`); the rule lives in `pids.js`.

import { log, config } from 'acemux:plugin/host@0.3.0';
import { dropPids, pidsFromConfig } from './pids.js';

// Read when the first stream starts, not at the module's top level: the
// module is evaluated once while the component is built, where no host
// exists to answer `config()`.
let drop = null;

function pidsToDrop() {
  if (drop === null) {
    drop = pidsFromConfig(JSON.parse(config()));
    log('info', `dropping PIDs ${[...drop].join(', ') || '(none)'}`);
  }
  return drop;
}

class StreamFilter {
  constructor(stream) {
    this.drop = pidsToDrop();
    log('debug', `filtering ${stream.contentKey}`);
  }

  process(packets) {
    return dropPids(packets, this.drop);
  }
}

export const filter = { StreamFilter };
