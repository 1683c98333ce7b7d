"""What the Python tests, benchmarks and soaks of sandboxd share: one way to
start `sandboxd-host serve` and know it is ready, one client of its WebSocket
protocol (WS_PROTOCOL.md), one binary frame codec, one reader of /proc.

  daemon     Daemon: `serve` on port 0 in its own directory, ready by its
             "ready" line, reached through <runtime_dir>/endpoints.json,
             stopped with the checks every test needs
  client     Client: requests, responses by id, events and output in arrival order
  frames     the binary frames: output parsed, stdin built
  procs      /proc: stat, memory, fds, sockets, QEMU processes below a pid
  waiting    wait_until: a condition polled against a deadline
  host_peer  HostPeer: tests/support/net_peer.py, the servers on the host's loopback

Import the modules themselves (`from sandboxd_harness.daemon import Daemon`):
this file imports nothing, so a test on an interpreter without
python3-websocket can still use procs, waiting and host_peer.
"""
