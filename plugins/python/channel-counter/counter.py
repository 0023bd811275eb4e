"""The rule of the channel counter: players per channel, and a summary
line when a channel's stream ends; on acemux's /metrics, players by kind,
joins and how long players watched. Plain Python (no `wit_world` import;
`acemux_metrics` keeps values in the process when there is no host), so
`PYTHONPATH=../sdk python3 -m unittest` tests it natively."""

from dataclasses import dataclass, field

from acemux_metrics import Counter, Gauge, Histogram

PLAYERS = Gauge("players", "Players watching now, by kind (ts, hls).", labels=["kind"])
JOINS = Counter("joins_total", "Players who joined, by kind.", labels=["kind"])
WATCHED = Histogram(
    "watched_seconds", "How long players watched.", buckets=[10, 60, 300, 1800, 7200]
)


@dataclass
class Channel:
    watching: dict = field(default_factory=dict)  # kind -> players now
    peak: int = 0
    joins: int = 0
    watched_ms: int = 0

    def total(self):
        return sum(self.watching.values())


class Audience:
    """Players per channel (content key), by kind (`ts`, `hls`)."""

    def __init__(self):
        self.channels = {}

    def joined(self, key, kind):
        ch = self.channels.setdefault(key, Channel())
        ch.watching[kind] = ch.watching.get(kind, 0) + 1
        ch.joins += 1
        JOINS.inc(kind)
        PLAYERS.add(1, kind)
        ch.peak = max(ch.peak, ch.total())
        return f"player joined {key} ({kind}): {ch.total()} watching"

    def left(self, key, kind, duration_ms):
        ch = self.channels.setdefault(key, Channel())
        # A player that joined before the plugin was loaded: never below 0.
        if ch.watching.get(kind, 0) > 0:
            PLAYERS.add(-1, kind)
        ch.watching[kind] = max(ch.watching.get(kind, 0) - 1, 0)
        ch.watched_ms += duration_ms
        WATCHED.observe(duration_ms / 1000)
        return f"player left {key} ({kind}) after {duration_ms} ms: {ch.total()} watching"

    def ended(self, key, reason):
        ch = self.channels.pop(key, Channel())
        return (
            f"channel {key} ended ({reason}): peak {ch.peak} players, "
            f"{ch.joins} joins, watched {ch.watched_ms / 1000:.1f} s in all"
        )

    def watching(self, key):
        ch = self.channels.get(key)
        return ch.total() if ch else 0
