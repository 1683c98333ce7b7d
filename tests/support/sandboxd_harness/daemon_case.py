"""DaemonTestCase: a unittest class around one daemon that its tests share.

`start_daemon(...)` in setUpClass starts it (the arguments are Daemon's) and
connects `cls.client`; once the class is done — also when setUpClass failed
half-way — the client is closed, the daemon stopped with its checks (no
QEMU left, a clean exit), the end of its log printed, its directory removed,
and a problem the stop found fails the class. Cleanups a class adds before
start_daemon run after the daemon is gone (unittest runs them last-in,
first-out).
"""
import sys
import unittest

from sandboxd_harness.daemon import Daemon


class DaemonTestCase(unittest.TestCase):
    daemon = None
    client = None

    @classmethod
    def start_daemon(cls, connect=True, **daemon_args):
        cls.daemon = Daemon(**daemon_args)
        cls.addClassCleanup(cls._stop_daemon)
        if connect:
            cls.client = cls.daemon.connect()
        return cls.daemon

    @classmethod
    def _stop_daemon(cls):
        if cls.client is not None:
            cls.client.close()
        problem = cls.daemon.stop()
        print("\n--- " + cls.daemon.tail(), file=sys.stderr)
        cls.daemon.cleanup()
        if problem:
            raise AssertionError(problem)
