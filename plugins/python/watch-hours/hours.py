"""The time-of-day rule itself, without the component glue, so that it
can be unit-tested with plain `unittest`."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class Window:
    """Minutes of the day [start, end); end before start crosses midnight."""

    start: int
    end: int

    def holds(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


def minutes(text: str) -> int:
    """`HH:MM` as minutes of the day; ValueError when it is not one."""
    hours, _, mins = text.partition(":")
    h, m = int(hours), int(mins)
    if not (0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 24 * 60):
        raise ValueError(f"`{text}` is not a time of day (HH:MM)")
    return h * 60 + m


def offset_minutes(text: str) -> int:
    """`+HH:MM` / `-HH:MM` (the operator's time zone) as minutes."""
    sign = -1 if text.startswith("-") else 1
    return sign * minutes(text.lstrip("+-"))


def windows(config: dict) -> dict:
    """User name → its window, from `[config.users]` tables `{from, until}`."""
    out = {}
    for user, hours in config.get("users", {}).items():
        out[user] = Window(minutes(hours["from"]), minutes(hours["until"]))
    return out


def decide(user: Optional[str], unix_seconds: float, config: dict) -> Optional[str]:
    """None when `user` may watch at `unix_seconds`, else the reason why not.
    Users without a window (and players without a user) may always watch."""
    if user is None:
        return None
    window = windows(config).get(user)
    if window is None:
        return None
    offset = offset_minutes(config.get("utc_offset", "+00:00"))
    minute = int((unix_seconds // 60 + offset) % (24 * 60))
    if window.holds(minute):
        return None
    hours = config["users"][user]
    return f"{user} may watch from {hours['from']} to {hours['until']}"
