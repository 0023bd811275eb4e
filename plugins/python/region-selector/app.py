"""acemux selector plugin in Python: engines by region.

Built with componentize-py against acemux's `wit/` (world
`selector-plugin`); the rule lives in `region.py`."""

import json

from wit_world import exports
from wit_world.exports.selector import Selection_Engine, Selection_NoOpinion
from wit_world.imports import host
from wit_world.imports.host import Level

import region

_engines = []
_config = None


def _config_once():
    global _config
    if _config is None:
        _config = json.loads(host.config())
    return _config


class Selector(exports.Selector):
    def set_engines(self, engines):
        global _engines
        _engines = engines

    def select(self, request, candidates):
        infos = []
        for c in candidates:
            if c.engine >= len(_engines):
                continue
            e = _engines[c.engine]
            infos.append(region.EngineInfo(e.id, dict(e.labels), c.healthy, c.active_streams,
                                           c.pending_streams, c.capacity, e.forwarded))
        chosen = region.choose(infos, request.client_address, _config_once())
        if chosen is None:
            return Selection_NoOpinion()
        host.log(Level.DEBUG, f"region selector chose {chosen} for {request.content_key}")
        return Selection_Engine(chosen)
