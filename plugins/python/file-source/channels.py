"""Reads a JSON list of channels: `[{"name": ..., "id": ...}, ...]` or
`{"channels": [...]}`, each entry with `id` (or `content_id`) or
`infohash` (40 hex characters), and optionally `group`, `logo`, `tvg_id`,
`number`. Entries that name nothing are skipped and counted. No
`wit_world` here: this is what the unit tests run natively."""

import json

HEX = set("0123456789abcdefABCDEF")


def _hex40(value):
    return isinstance(value, str) and len(value) == 40 and set(value) <= HEX


def _text(entry, key):
    value = entry.get(key)
    return value.strip() or None if isinstance(value, str) else None


def read_channels(data):
    """Returns (channels, skipped); each channel a dict with `name`, `id`,
    `infohash` (bool), `group`, `logo`, `tvg_id`, `number`. Raises
    ValueError when `data` is not such a list."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not a JSON list of channels: {e}") from None
    if isinstance(document, dict):
        document = document.get("channels")
    if not isinstance(document, list):
        raise ValueError("not a JSON list of channels")
    channels = []
    for entry in document:
        if not isinstance(entry, dict):
            continue
        name = _text(entry, "name")
        content_id = entry.get("id", entry.get("content_id"))
        infohash = entry.get("infohash")
        if not name or not (_hex40(content_id) or _hex40(infohash)):
            continue
        number = entry.get("number")
        channels.append(
            {
                "name": name,
                "id": (content_id if _hex40(content_id) else infohash).lower(),
                "infohash": not _hex40(content_id),
                "group": _text(entry, "group"),
                "logo": _text(entry, "logo"),
                "tvg_id": _text(entry, "tvg_id"),
                "number": number if isinstance(number, int) and 0 < number < 2**32 else None,
            }
        )
    return channels, len(document) - len(channels)
