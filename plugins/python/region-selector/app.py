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
        host.log(Level.INFO, f"regions by address prefix: {_config.get('regions', {})}")
    return _config


class Selector(exports.Selector):
    def set_engines(self, engines):
        global _engines
        # Labels as a dict once per list, not once per selection.
        _engines = [(e.id, dict(e.labels), e.forwarded, e.capacity) for e in engines]

    def select(self, request, candidates):
        infos = []
        position = {}
        for c in candidates:
            if c.position >= len(_engines):
                continue
            engine_id, labels, forwarded, capacity = _engines[c.position]
            position[engine_id] = c.position
            # Candidates are healthy by acemux's contract.
            infos.append(region.EngineInfo(engine_id, labels, True, c.running, c.starting, capacity, forwarded))
        chosen = region.choose(infos, request.client_address, _config_once())
        # (No log line per call: building one costs the interpreter more
        # than the choice, even when acemux does not print it.)
        # acemux is answered with the engine's position in its list.
        return Selection_NoOpinion() if chosen is None else Selection_Engine(position[chosen])
