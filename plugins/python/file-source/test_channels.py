import json
import unittest

from channels import read_channels

A = "0123456789abcdef0123456789abcdef01234567"


class ReadChannels(unittest.TestCase):
    def test_both_shapes_and_what_is_skipped(self):
        data = json.dumps(
            [
                {"name": "A", "id": A, "group": "G", "number": 7},
                {"name": "B", "infohash": A.upper()},
                {"name": "", "id": A},
                {"name": "C", "id": "short"},
                "not an entry",
            ]
        ).encode()
        channels, skipped = read_channels(data)
        self.assertEqual(skipped, 3)
        self.assertEqual([c["name"] for c in channels], ["A", "B"])
        self.assertEqual((channels[0]["group"], channels[0]["number"], channels[0]["infohash"]), ("G", 7, False))
        self.assertEqual((channels[1]["id"], channels[1]["infohash"]), (A, True))
        wrapped, _ = read_channels(json.dumps({"channels": [{"name": "A", "content_id": A}]}).encode())
        self.assertEqual(len(wrapped), 1)

    def test_what_is_no_list_is_an_error(self):
        for bad in [b"<html>", b"{}", b"42", b"\xff\xfe"]:
            with self.assertRaises(ValueError):
                read_channels(bad)


if __name__ == "__main__":
    unittest.main()
