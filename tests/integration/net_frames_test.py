#!/usr/bin/python3
"""Hostile frames at the daemon's network stack, from outside the process.

`sandboxd-host net-serve` runs one sandbox network on a unix socket; this
test plays QEMU's side of it (a 4-byte big-endian length before each
Ethernet frame), crafting frames with scapy. It checks the stack answers a
well-behaved guest (DHCP, ARP, ping, a TCP connection through a host alias,
DNS over TCP to the gateway), then sends garbage, truncated and oversized
frames, a SYN flood and a fragment flood, and checks that the daemon is still
up, still answers, and that its memory stayed bounded (printed before and
after).
"""
import collections
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness import procs  # noqa: E402
from sandboxd_harness.host_peer import HostPeer  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
GUEST_MAC = "52:54:00:12:34:56"
GATEWAY_MAC = "02:73:62:00:00:01"
GUEST_IP = "10.0.2.15"
GATEWAY_IP = "10.0.2.2"
ALIAS_IP = "10.0.2.100"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


class Link:
    """QEMU's end of the stream: frames out, and a thread collecting frames in
    (the latest 1000: a flood's answers must not crowd out the answer a
    check waits for)."""

    def __init__(self, path, daemon):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

        def connected():
            if daemon.poll() is not None:
                raise RuntimeError(f"net-serve exited with {daemon.returncode}")
            try:
                self.sock.connect(path)
                return True
            except (FileNotFoundError, ConnectionRefusedError):
                return False

        wait_until(connected, 10, f"net-serve listening on {path}")
        self.frames = collections.deque(maxlen=1000)
        self.arrived = threading.Condition()
        self.received = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + n:
                    break
                frame, buf = buf[4:4 + n], buf[4 + n:]
                with self.arrived:
                    self.received += 1
                    self.frames.append(frame)
                    self.arrived.notify_all()

    def send(self, frame):
        self.sock.sendall(struct.pack(">I", len(frame)) + bytes(frame))

    def send_raw(self, data):
        self.sock.sendall(data)

    def clear(self):
        with self.arrived:
            self.frames.clear()

    def wait_for(self, predicate, timeout=5.0):
        """The first frame held or arriving within `timeout` for which
        `predicate(Ether(frame))` holds, or None. Each frame is parsed once."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            checked = self.received - len(self.frames)  # frames counted before the oldest held
        while True:
            with self.arrived:
                left = deadline - time.monotonic()
                if self.received == checked and left > 0:
                    self.arrived.wait(left)
                held_from = self.received - len(self.frames)
                new = list(self.frames)[max(0, checked - held_from):]
                checked = self.received
            for f in new:
                pkt = Ether(f)
                if predicate(pkt):
                    return pkt
            if not new and deadline - time.monotonic() <= 0:
                return None


# The SYN flood's source ports and the well-behaved guest's are disjoint: the
# flood leaves its last connections half-open, and a SYN of the well-behaved
# guest that landed on one of their flow keys would be a SYN with a new
# sequence number on a half-open connection, which TCP ignores.
FLOOD_PORTS = (1024, 1024 + 20000)
WELL_BEHAVED_PORTS = (30000, 60000)


def guest(pkt):
    return Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / pkt


def well_behaved_guest(link, http_port, label):
    link.clear()
    link.send(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") /
              UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(GUEST_MAC.replace(":", "")), xid=0x5a5a) /
              DHCP(options=[("message-type", "discover"), "end"]))
    offer = link.wait_for(lambda p: p.haslayer(BOOTP) and p[BOOTP].xid == 0x5a5a)
    check(offer is not None and offer[BOOTP].yiaddr == GUEST_IP, f"{label}: DHCP offer of {GUEST_IP}")

    link.send(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GUEST_MAC, psrc=GUEST_IP, pdst=GATEWAY_IP))
    arp = link.wait_for(lambda p: p.haslayer(ARP) and p[ARP].op == 2)
    check(arp is not None and arp[ARP].hwsrc == GATEWAY_MAC, f"{label}: ARP reply for the gateway")

    link.send(guest(IP(src=GUEST_IP, dst=GATEWAY_IP) / ICMP(id=7, seq=1) / Raw(b"x" * 56)))
    pong = link.wait_for(lambda p: p.haslayer(ICMP) and p[ICMP].type == 0 and p[ICMP].id == 7)
    check(pong is not None, f"{label}: ping of the gateway answered")

    sport = random.randint(*WELL_BEHAVED_PORTS)
    link.send(guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=sport, dport=http_port, flags="S", seq=1000,
                                                          options=[("MSS", 1460), ("WScale", 7)])))
    synack = link.wait_for(lambda p: p.haslayer(TCP) and p[TCP].dport == sport and p[TCP].flags & 0x12 == 0x12)
    check(synack is not None, f"{label}: TCP connection through the host alias accepted")
    if synack is None:
        return
    ours = synack[TCP].seq + 1
    request = b"GET /small HTTP/1.0\r\n\r\n"
    link.send(guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=sport, dport=http_port, flags="A", seq=1001, ack=ours, window=1024)))
    link.send(guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=sport, dport=http_port, flags="PA", seq=1001, ack=ours,
                                                          window=1024) / Raw(request)))
    reply = link.wait_for(lambda p: p.haslayer(TCP) and p[TCP].dport == sport and b"hello from the host" in bytes(p[TCP].payload))
    check(reply is not None, f"{label}: HTTP reply from the host's loopback through the stack")
    link.send(guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=sport, dport=http_port, flags="R", seq=1001 + len(request))))

    # DNS over TCP to the gateway (what a resolver does after a truncated UDP reply).
    sport = random.randint(*WELL_BEHAVED_PORTS)
    link.send(guest(IP(src=GUEST_IP, dst=GATEWAY_IP) / TCP(sport=sport, dport=53, flags="S", seq=5000,
                                                            options=[("MSS", 1460)])))
    synack = link.wait_for(lambda p: p.haslayer(TCP) and p[TCP].dport == sport and p[TCP].flags & 0x12 == 0x12)
    check(synack is not None, f"{label}: TCP connection to the gateway's DNS accepted")
    if synack is None:
        return
    ours = synack[TCP].seq + 1
    query = bytes(DNS(id=0x77, rd=1, qd=DNSQR(qname="host.test", qtype="A")))
    link.send(guest(IP(src=GUEST_IP, dst=GATEWAY_IP) / TCP(sport=sport, dport=53, flags="PA", seq=5001, ack=ours,
                                                            window=4096) / Raw(struct.pack(">H", len(query)) + query)))
    answer = link.wait_for(lambda p: p.haslayer(TCP) and p[TCP].dport == sport and len(bytes(p[TCP].payload)) > 2)
    addresses = []
    if answer is not None:
        data = bytes(answer[TCP].payload)
        (n,) = struct.unpack(">H", data[:2])
        reply = DNS(data[2:2 + n])
        addresses = [reply.an[i].rdata for i in range(reply.ancount)] if reply.id == 0x77 else []
    check(addresses == [ALIAS_IP], f"{label}: DNS over TCP answers the alias with {ALIAS_IP} (got {addresses})")
    link.send(guest(IP(src=GUEST_IP, dst=GATEWAY_IP) / TCP(sport=sport, dport=53, flags="R", seq=5001 + 2 + len(query))))


def processed_so_far(link, label):
    """Returns once the stack has handled every frame sent before: it handles
    them in order, so the answer to a ping sent last comes after them all."""
    link.clear()
    link.send(guest(IP(src=GUEST_IP, dst=GATEWAY_IP) / ICMP(id=8, seq=2) / Raw(b"barrier")))
    pong = link.wait_for(lambda p: p.haslayer(ICMP) and p[ICMP].type == 0 and p[ICMP].id == 8, timeout=60)
    check(pong is not None, f"{label}: a ping sent after them answered")


def main():
    peer = HostPeer()
    http_port = peer.http_port
    path = os.path.join(tempfile.mkdtemp(), "link.sock")
    daemon = subprocess.Popen([HOST, "net-serve", "--socket", path, "--egress", "deny-all",
                               "--host-alias", "host.test=127.0.0.1", "--net-stats"],
                              stderr=subprocess.PIPE, text=True)
    try:
        link = Link(path, daemon)
        well_behaved_guest(link, http_port, "before the floods")
        rss_before = procs.vm_rss_kib(daemon.pid)
        print(f"daemon RSS before the floods: {rss_before} KiB", flush=True)
        rng = random.Random(1234)

        # Garbage: random bytes of random lengths, framed.
        for _ in range(20000):
            link.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))))
        # Garbage with valid headers: random payloads behind a guest's Ethernet and IPv4 header.
        for _ in range(5000):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 100)))
            link.send(guest(IP(src=GUEST_IP, dst="93.184.216.34", proto=rng.choice([1, 6, 17, 47])) / Raw(body)))
        # Truncated: valid frames cut short.
        template = bytes(guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=1, dport=http_port, flags="S")))
        for _ in range(5000):
            link.send(template[:rng.randint(0, len(template) - 1)])
        # Oversized: frames longer than any MTU, sent whole, 8 MiB each.
        junk = os.urandom(1 << 20)
        for _ in range(8):
            link.send_raw(struct.pack(">I", 8 << 20))
            for _ in range(8):
                link.send_raw(junk)
        print(f"daemon RSS after garbage, truncated and oversized frames: {procs.vm_rss_kib(daemon.pid)} KiB", flush=True)

        # SYN flood: to a denied destination and to the alias (the connection limit holds).
        syn = guest(IP(src=GUEST_IP, dst="93.184.216.34") / TCP(sport=1, dport=80, flags="S", seq=1))
        syn_alias = guest(IP(src=GUEST_IP, dst=ALIAS_IP) / TCP(sport=1, dport=http_port, flags="S", seq=1))
        for i in range(FLOOD_PORTS[1] - FLOOD_PORTS[0]):
            pkt = syn if i % 2 else syn_alias
            pkt[TCP].sport = FLOOD_PORTS[0] + i
            pkt[TCP].seq = rng.getrandbits(32)
            del pkt[TCP].chksum
            link.send(pkt)
        print(f"daemon RSS after a SYN flood of 20000: {procs.vm_rss_kib(daemon.pid)} KiB", flush=True)

        # Fragment flood: first, middle and last pieces of datagrams that never complete.
        frag = guest(IP(src=GUEST_IP, dst="93.184.216.34", flags="MF", frag=0, id=1) / UDP(sport=5, dport=5) / Raw(b"f" * 1000))
        for i in range(20000):
            frag[IP].id = i & 0xffff
            frag[IP].frag = (i % 3) * 100
            frag[IP].flags = "MF" if i % 3 != 2 else 0
            del frag[IP].chksum
            link.send(frag)
        processed_so_far(link, "the floods")
        rss_after = procs.vm_rss_kib(daemon.pid)
        print(f"daemon RSS after a fragment flood of 20000: {rss_after} KiB", flush=True)

        check(daemon.poll() is None, "the daemon is still running")
        well_behaved_guest(link, http_port, "after the floods")
        check(rss_after - rss_before < 64 * 1024, f"memory bounded: grew {rss_after - rss_before} KiB (< 64 MiB)")
    finally:
        daemon.terminate()
        try:
            _, err = daemon.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            _, err = daemon.communicate()
        peer.close()
    print(err)
    check("ipv4 fragment: 20000" in err, "every fragment counted as dropped")
    check("oversized frames skipped: 8" in err, "every oversized frame skipped")
    print(f"frame-level checks: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
