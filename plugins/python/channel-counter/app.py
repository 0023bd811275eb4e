"""acemux event plugin in Python: counts players per channel.

Logs a line when a player joins or leaves (with how many watch the channel
now) and a summary when the channel's stream ends. Built with
componentize-py against acemux's `wit/` (world `event-plugin`); the
counting lives in `counter.py`."""

from wit_world import exports
from wit_world.exports.events import (
    Event_PlayerConnected,
    Event_PlayerDisconnected,
    Event_StreamEnded,
)
from wit_world.imports import host
from wit_world.imports.host import Level
from wit_world.imports.types import PlayerKind

from counter import Audience

_audience = Audience()


def _kind(kind):
    return "hls" if kind == PlayerKind.HLS else "ts"


class Events(exports.Events):
    def on_event(self, event):
        if isinstance(event, Event_PlayerConnected):
            p = event.value
            host.log(Level.INFO, _audience.joined(p.stream.content_key, _kind(p.kind)))
        elif isinstance(event, Event_PlayerDisconnected):
            p = event.value
            host.log(Level.INFO, _audience.left(p.stream.content_key, _kind(p.kind), p.duration_ms))
        elif isinstance(event, Event_StreamEnded):
            e = event.value
            host.log(Level.INFO, _audience.ended(e.stream.content_key, e.reason))
