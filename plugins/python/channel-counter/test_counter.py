"""Unit tests of the counting, natively: `python3 -m pytest` (or `python3
test_counter.py`) in this directory; no component toolchain needed."""

import unittest

import acemux_metrics
from counter import Audience


class AudienceTest(unittest.TestCase):
    def test_players_are_counted_per_channel_and_kind(self):
        a = Audience()
        self.assertEqual(a.joined("aa", "ts"), "player joined aa (ts): 1 watching")
        self.assertEqual(a.joined("aa", "hls"), "player joined aa (hls): 2 watching")
        a.joined("bb", "ts")
        self.assertEqual(a.left("aa", "ts", 1500), "player left aa (ts) after 1500 ms: 1 watching")
        self.assertEqual(a.watching("aa"), 1)
        self.assertEqual(a.watching("bb"), 1)

    def test_the_summary_ends_the_channel(self):
        a = Audience()
        a.joined("aa", "ts")
        a.joined("aa", "ts")
        a.left("aa", "ts", 1000)
        a.left("aa", "ts", 2500)
        self.assertEqual(
            a.ended("aa", "normal"), "channel aa ended (normal): peak 2 players, 2 joins, watched 3.5 s in all"
        )
        self.assertEqual(a.watching("aa"), 0)

    def test_a_player_from_before_the_plugin_never_makes_it_negative(self):
        a = Audience()
        self.assertEqual(a.left("aa", "ts", 10), "player left aa (ts) after 10 ms: 0 watching")
        self.assertEqual(a.ended("zz", "stopped"), "channel zz ended (stopped): peak 0 players, 0 joins, watched 0.0 s in all")

    def test_the_metrics_follow_players(self):
        acemux_metrics.reset()
        a = Audience()
        a.joined("aa", "ts")
        a.joined("bb", "ts")
        a.joined("aa", "hls")
        a.left("aa", "ts", 90_000)
        a.left("cc", "ts", 5)  # joined before the plugin: the gauge stays
        self.assertEqual(acemux_metrics.value("joins_total", "ts"), 2.0)
        self.assertEqual(acemux_metrics.value("players", "ts"), 1.0)
        self.assertEqual(acemux_metrics.value("players", "hls"), 1.0)
        self.assertEqual(acemux_metrics.histogram("watched_seconds"), (2, 90.005))


if __name__ == "__main__":
    unittest.main()
