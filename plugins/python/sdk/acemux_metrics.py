"""The plugin's own metrics, on acemux's /metrics as
acemux_plugin_<name>{plugin="<plugin>",...}: counters, gauges and
histograms over acemux's `metrics` host interface (wit/plugin.wit).

    from acemux_metrics import Counter, Gauge, Histogram

    JOINS = Counter("joins_total", "Players who joined.", labels=["kind"])
    JOINS.inc("ts")

Build with this directory on the path: `componentize-py ... componentize
app -p . -p ../sdk -o plugin.wasm`.

A metric is declared with acemux at its first use, not at import (the
module is imported once while the component is built, where there is no
host). The rules (names [a-z][a-z0-9_]*, a counter's ending in _total, at
most 8 labels, `max_series` label sets per plugin...) are in wit/. A call
that breaks them changes nothing and raises nothing: acemux counts it
(/plugins -> metrics.refused, with the reason) and `acemux plugin filter`
prints it. Label by what has few values (an engine, a kind, a reason),
never by a content id or a player.

Outside a component (a plugin's unit tests) values are kept here:
`value("joins_total", "ts")`, `histogram("watch_seconds")` -> (count, sum).
"""

try:
    from wit_world.imports import metrics as _host
except ImportError:  # natively, in unit tests
    _host = None

_COUNTER, _GAUGE, _HISTOGRAM = "counter", "gauge", "histogram"

# Natively: (name, label values) -> value, or [count, sum] for a histogram.
_native = {}


class _Family:
    def __init__(self, name, help, kind, labels, buckets=()):
        self.name = name
        self.help = help
        self.kind = kind
        self.labels = list(labels)
        self.buckets = [float(b) for b in buckets]
        self._handle = None
        self._declared = False
        self._series = {}

    def _metric(self):
        if not self._declared:
            self._declared = True
            kind = {
                _COUNTER: _host.MetricKind.COUNTER,
                _GAUGE: _host.MetricKind.GAUGE,
                _HISTOGRAM: _host.MetricKind.HISTOGRAM,
            }[self.kind]
            try:
                self._handle = _host.define(
                    _host.Metric(self.name, self.help, kind, self.labels, self.buckets)
                )
            except Exception:  # refused: counted by acemux
                self._handle = None
        return self._handle

    def _update(self, values, op, value):
        values = tuple(str(v) for v in values)
        if _host is None:
            return _record(self, values, op, float(value))
        metric = self._metric()
        if metric is None:
            return
        series = self._series.get(values)
        if series is None:
            try:
                series = _host.series(metric, list(values))
            except Exception:
                return
            if len(self._series) < 10_000:
                self._series[values] = series
        try:
            getattr(_host, op)(series, float(value))
        except Exception:
            pass


def _record(family, values, op, value):
    if len(values) != len(family.labels):
        raise ValueError(
            f"metric {family.name} takes {len(family.labels)} label values "
            "(acemux would refuse this call)"
        )
    key = (family.name, values)
    if op == "observe":
        entry = _native.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += value
    elif op == "set":
        _native[key] = value
    else:
        if family.kind == _COUNTER and value < 0:
            raise ValueError(f"counter {family.name} cannot go down")
        _native[key] = _native.get(key, 0.0) + value


class Counter(_Family):
    """Only goes up; its name ends in `_total`."""

    def __init__(self, name, help, labels=()):
        super().__init__(name, help, _COUNTER, labels)

    def inc(self, *label_values):
        self._update(label_values, "add", 1.0)

    def add(self, value, *label_values):
        self._update(label_values, "add", value)


class Gauge(_Family):
    """Goes up and down."""

    def __init__(self, name, help, labels=()):
        super().__init__(name, help, _GAUGE, labels)

    def set(self, value, *label_values):
        self._update(label_values, "set", value)

    def add(self, value, *label_values):
        self._update(label_values, "add", value)


class Histogram(_Family):
    """Counts observations into buckets (upper bounds, increasing; none:
    0.005 to 10)."""

    def __init__(self, name, help, labels=(), buckets=()):
        super().__init__(name, help, _HISTOGRAM, labels, buckets)

    def observe(self, value, *label_values):
        self._update(label_values, "observe", value)


def value(name, *label_values):
    """A counter's or a gauge's value in unit tests (None: never updated)."""
    v = _native.get((name, tuple(label_values)))
    return v if isinstance(v, float) else None


def histogram(name, *label_values):
    """A histogram's (observations, sum) in unit tests."""
    v = _native.get((name, tuple(label_values)))
    return tuple(v) if isinstance(v, list) else None


def reset():
    """Forgets the values unit tests recorded."""
    _native.clear()
