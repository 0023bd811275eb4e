"""Unit tests of the rule, natively: `python3 -m pytest` (or `python3
test_region.py`) in this directory; no component toolchain needed."""

import unittest

from region import EngineInfo, choose, region_of

REGIONS = {"10.1.": "eu", "10.2.": "us", "10.1.9.": "eu-north"}


def engine(id, region, active=0, forwarded=False, healthy=True):
    return EngineInfo(id, {"region": region}, healthy, active, 0, 3, forwarded)


class RegionTest(unittest.TestCase):
    def test_longest_prefix_wins_and_ports_are_ignored(self):
        self.assertEqual(region_of("10.1.2.3:5000", REGIONS), "eu")
        self.assertEqual(region_of("10.1.9.3:5000", REGIONS), "eu-north")
        self.assertIsNone(region_of("192.168.1.1:1", REGIONS))
        self.assertIsNone(region_of(None, REGIONS))

    def test_least_loaded_engine_of_the_players_region(self):
        engines = [engine("a:1", "us"), engine("b:1", "eu", active=2), engine("c:1", "eu", active=1)]
        self.assertEqual(choose(engines, "10.1.0.7:1", {"regions": REGIONS}), "c:1")

    def test_no_opinion_without_a_region_or_a_free_engine_there(self):
        engines = [engine("a:1", "us"), engine("b:1", "eu", active=3)]
        self.assertIsNone(choose(engines, "192.168.0.1:1", {"regions": REGIONS}))
        self.assertIsNone(choose(engines, "10.1.0.7:1", {"regions": REGIONS}))

    def test_the_label_is_configurable(self):
        engines = [EngineInfo("x:1", {"site": "eu"}, True, 0, 0, 3, False)]
        self.assertEqual(choose(engines, "10.1.0.7:1", {"label": "site", "regions": REGIONS}), "x:1")


if __name__ == "__main__":
    unittest.main()
