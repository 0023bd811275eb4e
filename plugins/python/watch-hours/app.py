"""acemux access plugin in Python: each user may watch only at its hours.

Built with componentize-py against acemux's `wit/` (world
`access-plugin`); the rule lives in `hours.py`. The clock is the host's
wall clock (WASI); hours are in the operator's `utc_offset`."""

import json
import time

from wit_world import exports
from wit_world.exports.access import Decision_Allow, Decision_Deny
from wit_world.imports import host
from wit_world.imports.host import Level

import hours

_config = None


def _config_once():
    global _config
    if _config is None:
        _config = json.loads(host.config())
        # Read once; a mistake in it shows at the first check, in acemux's log.
        hours.windows(_config)
        host.log(Level.INFO, f"watch hours for {sorted(_config.get('users', {}))}")
    return _config


class Access(exports.Access):
    def check(self, viewer):
        why = hours.decide(viewer.user, time.time(), _config_once())
        return Decision_Allow() if why is None else Decision_Deny(why)
