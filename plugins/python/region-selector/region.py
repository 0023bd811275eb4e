"""The selection rule itself, without the component glue, so that it can be
unit-tested with plain pytest."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class EngineInfo:
    id: str
    labels: dict
    healthy: bool
    active: int
    pending: int
    capacity: int
    forwarded: bool


def region_of(client_address: Optional[str], regions: dict) -> Optional[str]:
    """The region of a player's address: the longest prefix in `regions`
    that the address (without its port) starts with."""
    if not client_address:
        return None
    host = client_address.rsplit(":", 1)[0].strip("[]")
    best = None
    for prefix, region in regions.items():
        if host.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, region)
    return best[1] if best else None


def choose(engines: list, client_address: Optional[str], config: dict) -> Optional[str]:
    """The least loaded engine whose `label` (default `region`) is the
    player's region, forwarded engines first among equals; None when no
    engine of that region can take the stream (acemux then decides)."""
    label = config.get("label", "region")
    region = region_of(client_address, config.get("regions", {}))
    if region is None:
        return None
    mine = [e for e in engines if e.labels.get(label) == region and e.healthy and e.active + e.pending < e.capacity]
    if not mine:
        return None
    best = min(mine, key=lambda e: (e.active + e.pending, not e.forwarded, e.id))
    return best.id
