// acemux filter plugin in JavaScript: drops the PIDs listed in its
// `[config]` from every stream, before acemux's shared buffer, so no
// player receives them. Built with componentize-js against acemux's
// `wit/` (world `filter-plugin`); the rule lives in `pids.js`.

import { log, config } from 'acemux:plugin/host@0.10.0';
import * as host from 'acemux:plugin/metrics@0.10.0';
import { metricsOver } from '../sdk/metrics.js';
import { dropPids, pidMask, pidsFromConfig, reportDropped } from './pids.js';

// On acemux's /metrics as acemux_plugin_packets_dropped_total{pid="…"}.
const metrics = metricsOver(host);
const droppedTotal = metrics.counter('packets_dropped_total', 'Packets dropped, by PID.', ['pid']);

// Read when the first stream starts, not at the module's top level: the
// module is evaluated once while the component is built, where no host
// exists to answer `config()`.
let mask = null;
let pidList = [];
const dropped = new Uint32Array(0x2000);

function pidsToDrop() {
  if (mask === null) {
    const pids = pidsFromConfig(JSON.parse(config()));
    log('info', `dropping PIDs ${[...pids].join(', ') || '(none)'}`);
    pidList = [...pids];
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
    const out = dropPids(packets, this.mask, dropped);
    reportDropped(droppedTotal, pidList, dropped);
    return out;
  }
}

export const filter = { StreamFilter };
