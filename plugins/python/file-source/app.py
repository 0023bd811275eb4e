"""acemux channel-source plugin in Python: channels from a JSON file in a
directory granted to the plugin (read-only), e.g. one a script of the
operator's rewrites. Built with componentize-py against acemux's `wit/`
(world `channel-source-plugin`); the reading lives in `channels.py`.

In acemux's settings file:

    [[sources]]
    name = "mine"
    kind = "plugin"
    plugin = "file-source"
"""

import json

from wit_world import exports
from wit_world.exports.channel_source import Channel
from wit_world.imports import host
from wit_world.imports.host import Level
from wit_world.imports.types import KeyType
from componentize_py_types import Err

from channels import read_channels

# Largest file read.
MAX_BYTES = 4 << 20

_config = None


def _file():
    # Read at the first call, not at import: the module is imported once
    # while the component is built, where there is no host.
    global _config
    if _config is None:
        _config = json.loads(host.config())
    path = _config.get("file")
    if not isinstance(path, str) or not path:
        raise Err("set `file` in [config]: the list's path as the plugin sees it (a granted directory)")
    return path


class ChannelSource(exports.ChannelSource):
    def channels(self, source):
        path = _file()
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise Err(f"cannot read {path}: {e.strerror or e}")
        if len(data) > MAX_BYTES:
            raise Err(f"{path} is more than {MAX_BYTES} bytes")
        try:
            entries, skipped = read_channels(data)
        except ValueError as e:
            raise Err(str(e))
        host.log(Level.INFO, f"source {source}: {len(entries)} channels from {path}, {skipped} entries skipped")
        return [
            Channel(
                name=e["name"],
                id=e["id"],
                key_type=KeyType.INFOHASH if e["infohash"] else KeyType.CONTENT_ID,
                group=e["group"],
                logo=e["logo"],
                tvg_id=e["tvg_id"],
                number=e["number"],
            )
            for e in entries
        ]
