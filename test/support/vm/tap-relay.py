#!/usr/bin/env python3
"""Relays Ethernet frames between a tap device and the harness's private
network switch (test/support/vm/vm.ts, PrivateNetwork), which carries one
frame per UDP datagram on 127.0.0.1, as qemu's dgram netdev does.

    tap-relay.py TAP_NAME HUB_PORT

Creates TAP_NAME (the caller moves it into a network namespace of its own),
binds a UDP port on 127.0.0.1, prints that port on one line, then relays
until killed.
"""
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def main() -> None:
    name, hub = sys.argv[1], int(sys.argv[2])
    tap = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.connect(("127.0.0.1", hub))
    print(udp.getsockname()[1], flush=True)
    while True:
        ready, _, _ = select.select([tap, udp], [], [])
        for fd in ready:
            try:
                if fd is udp:
                    os.write(tap, udp.recv(65535))
                else:
                    udp.send(os.read(tap, 65535))
            except OSError:
                # A frame the other side refused (the switch not there yet, the tap down): dropped, as a wire would.
                pass


if __name__ == "__main__":
    main()
