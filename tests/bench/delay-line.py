#!/usr/bin/env python3
"""A network with a round-trip time, for kernels without netem.

Creates two tun devices, forwards every IP packet from one to the other
after a fixed one-way delay (both directions), and exits on SIGTERM. The
caller moves the devices into two network namespaces and gives them
addresses (see send-buffer.sh): real TCP between the namespaces then sees
a real RTT of twice the delay, so its throughput with a fixed send buffer
is what it would be across a WAN.

usage: delay-line.py TUN_A TUN_B ONE_WAY_DELAY_MS
"""

import asyncio
import fcntl
import os
import signal
import struct
import sys

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


async def main() -> None:
    name_a, name_b, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delay = delay_ms / 1000.0
    a, b = open_tun(name_a), open_tun(name_b)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)

    def deliver(dst: int, packet: bytes) -> None:
        try:
            os.write(dst, packet)
        except OSError:
            pass  # device down or queue full: the packet is lost, as on a network

    def forward(src: int, dst: int) -> None:
        while True:
            try:
                packet = os.read(src, 65536)
            except BlockingIOError:
                return
            loop.call_later(delay, deliver, dst, packet)

    loop.add_reader(a, forward, a, b)
    loop.add_reader(b, forward, b, a)
    print("ready", flush=True)
    await stop


if __name__ == "__main__":
    asyncio.run(main())
