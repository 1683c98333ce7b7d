"""tests/support/net_peer.py as a process: the HTTP, UDP and FTP servers on
the host's loopback that the network tests and benchmarks reach from a guest.

Ready means net_peer printed its "ready HTTP UDP FTP" line; it serves until
its stdin closes (`close`).
"""
import os
import subprocess
import sys

NET_PEER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "net_peer.py")


class HostPeer:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, NET_PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 4 or line[0] != "ready":
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"net_peer.py did not get ready: {line!r}")
        self.http_port, self.udp_port, self.ftp_port = (int(p) for p in line[1:])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def blob_sha256(size):
    """SHA-256 (hex) of the peer's /blob/<size>, to check what a guest got."""
    return subprocess.run([sys.executable, NET_PEER, "--sha256", str(size)], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
