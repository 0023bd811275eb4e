// The plugin's own metrics, on acemux's /metrics as
// acemux_plugin_<name>{plugin="<plugin>",...}: counters, gauges and
// histograms over acemux's `metrics` host interface (wit/plugin.wit).
//
//   import * as host from 'acemux:plugin/metrics@0.10.0';
//   import { metricsOver } from '../sdk/metrics.js';
//   const metrics = metricsOver(host);
//   const dropped = metrics.counter('packets_dropped_total', 'Packets dropped, by PID.', ['pid']);
//   dropped.add(3, '257');
//
// In unit tests (`node --test`, no WebAssembly) give no host:
// `metricsOver()` keeps values in memory (`metrics.value(name, ...labels)`,
// `metrics.histogram(name, ...labels)` -> [count, sum]).
//
// A metric is declared with acemux at its first use (a component's
// top level runs while it is built, where there is no host). The rules
// (names [a-z][a-z0-9_]*, a counter's ending in _total, at most 8 labels,
// `max_series` label sets per plugin...) are in wit/. A call that breaks
// them changes nothing and throws nothing: acemux counts it (/plugins ->
// metrics.refused, with the reason) and `acemux plugin filter` prints it.
// Label by what has few values (an engine, a PID, a reason), never by a
// content id or a player.

const REMEMBERED = 10000;

class Family {
  constructor(backend, name, help, kind, labels, buckets) {
    this.backend = backend;
    this.name = name;
    this.help = help;
    this.kind = kind;
    this.labels = labels;
    this.buckets = buckets;
    this.handle = undefined;
    this.series = new Map();
  }

  update(op, value, labelValues) {
    const values = labelValues.map(String);
    if (this.backend.native) {
      this.backend.record(this, op, Number(value), values);
      return;
    }
    const host = this.backend.host;
    if (this.handle === undefined) {
      try {
        this.handle = host.define({
          name: this.name,
          help: this.help,
          kind: this.kind,
          labels: this.labels,
          buckets: new Float64Array(this.buckets),
        });
      } catch {
        this.handle = null; // refused: counted by acemux
      }
    }
    if (this.handle === null) return;
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      try {
        series = host.series(this.handle, values);
      } catch {
        return;
      }
      if (this.series.size < REMEMBERED) this.series.set(key, series);
    }
    try {
      host[op](series, Number(value));
    } catch {
      // Refused (counted by acemux).
    }
  }
}

/** Only goes up; its name ends in `_total`. */
class Counter extends Family {
  inc(...labelValues) {
    this.update('add', 1, labelValues);
  }

  add(value, ...labelValues) {
    this.update('add', value, labelValues);
  }
}

/** Goes up and down. */
class Gauge extends Family {
  set(value, ...labelValues) {
    this.update('set', value, labelValues);
  }

  add(value, ...labelValues) {
    this.update('add', value, labelValues);
  }
}

/** Counts observations into buckets. */
class Histogram extends Family {
  observe(value, ...labelValues) {
    this.update('observe', value, labelValues);
  }
}

/** Values kept in memory, for unit tests. */
class NativeBackend {
  constructor() {
    this.native = true;
    this.values = new Map();
  }

  record(family, op, value, values) {
    if (values.length !== family.labels.length) {
      throw new Error(`metric ${family.name} takes ${family.labels.length} label values (acemux would refuse this call)`);
    }
    const key = `${family.name}\u0000${values.join('\u0000')}`;
    if (op === 'observe') {
      const [count, sum] = this.values.get(key) ?? [0, 0];
      this.values.set(key, [count + 1, sum + value]);
    } else if (op === 'set') {
      this.values.set(key, value);
    } else {
      if (family.kind === 'counter' && value < 0) throw new Error(`counter ${family.name} cannot go down`);
      this.values.set(key, (this.values.get(key) ?? 0) + value);
    }
  }

  get(name, labelValues) {
    return this.values.get(`${name}\u0000${labelValues.map(String).join('\u0000')}`);
  }
}

/**
 * Metrics over `host` (the `acemux:plugin/metrics` import), or kept in
 * memory without one (unit tests).
 */
export function metricsOver(host) {
  const backend = host ? { native: false, host } : new NativeBackend();
  return {
    counter: (name, help, labels = []) => new Counter(backend, name, help, 'counter', labels, []),
    gauge: (name, help, labels = []) => new Gauge(backend, name, help, 'gauge', labels, []),
    /** `buckets`: upper bounds, increasing (none: 0.005 to 10). */
    histogram: (name, help, labels = [], buckets = []) =>
      new Histogram(backend, name, help, 'histogram', labels, buckets),
    /** A counter's or gauge's value in unit tests. */
    value: (name, ...labelValues) => (backend.native ? backend.get(name, labelValues) : undefined),
    /** A histogram's [count, sum] in unit tests. */
    histogram_value: (name, ...labelValues) => (backend.native ? backend.get(name, labelValues) : undefined),
  };
}
