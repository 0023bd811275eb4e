"""Unit tests of the rule, natively: `python3 -m unittest` in this
directory; no component toolchain needed."""

import unittest

from hours import Window, decide, minutes

# 2026-12-04 17:00:00 UTC
FIVE_PM = 1_796_403_600
CONFIG = {
    "utc_offset": "+01:00",
    "users": {"kid": {"from": "07:00", "until": "19:30"}, "owl": {"from": "22:00", "until": "02:00"}},
}


class HoursTest(unittest.TestCase):
    def test_a_user_inside_its_hours_in_the_operator_s_zone(self):
        # 17:00 UTC is 18:00 at +01:00.
        self.assertIsNone(decide("kid", FIVE_PM, CONFIG))
        self.assertEqual(decide("kid", FIVE_PM + 2 * 3600, CONFIG), "kid may watch from 07:00 to 19:30")

    def test_a_window_across_midnight(self):
        self.assertIsNone(decide("owl", FIVE_PM + 7 * 3600, CONFIG))  # 01:00 next day, local
        self.assertIsNotNone(decide("owl", FIVE_PM, CONFIG))
        self.assertTrue(Window(minutes("22:00"), minutes("02:00")).holds(minutes("23:59")))

    def test_users_without_hours_and_players_without_a_user_always_watch(self):
        self.assertIsNone(decide("grandma", FIVE_PM, CONFIG))
        self.assertIsNone(decide(None, FIVE_PM, CONFIG))

    def test_a_bad_time_is_refused(self):
        with self.assertRaises(ValueError):
            minutes("25:00")
        with self.assertRaises(ValueError):
            decide("kid", FIVE_PM, {"users": {"kid": {"from": "7", "until": "19:30"}}})


if __name__ == "__main__":
    unittest.main()
