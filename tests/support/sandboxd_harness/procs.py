"""What /proc says about processes: their stat line, memory, fds and
sockets, and the QEMU processes a daemon runs.

Every reader takes a pid (and, for stat, optionally a thread id). A process
that is gone gives None from `stat` and False from `is_running`; the figures
(`vm_rss_kib`, `fd_count`, ...) raise OSError for it, since asking a gone
process for its memory is the caller's mistake.
"""
import collections
import os

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")

# The fields of /proc/PID/stat the tests use; cpu_seconds is utime + stime,
# start_ticks tells a process from a later one given the same pid.
ProcStat = collections.namedtuple("ProcStat", "pid comm state ppid cpu_seconds start_ticks")

_TCP_LISTEN = "0A"


def stat(pid, tid=None):
    """The stat line of a process (or of its thread `tid`), or None once it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            raw = f.read()
    except OSError:
        return None
    # The name may hold spaces and parentheses: it ends at the last ')'.
    close = raw.rindex(")")
    rest = raw[close + 2:].split()
    return ProcStat(int(pid if tid is None else tid), raw[raw.index("(") + 1:close], rest[0], int(rest[1]),
                    (int(rest[11]) + int(rest[12])) / TICKS_PER_SECOND, int(rest[19]))


def is_running(pid, start_ticks=None):
    """Whether pid runs: exists and is not a zombie waiting for its reaper;
    with `start_ticks`, and is still the process that started then."""
    st = stat(pid)
    return st is not None and st.state != "Z" and (start_ticks is None or st.start_ticks == start_ticks)


def cpu_seconds(pid):
    """CPU time (user + system) pid has used, 0.0 once it is gone."""
    st = stat(pid)
    return st.cpu_seconds if st else 0.0


def _status_kib(pid, field, path="status"):
    with open(f"/proc/{pid}/{path}") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def vm_rss_kib(pid):
    return _status_kib(pid, "VmRSS")


def pss_kib(pid):
    """Proportional set size (shared pages split between their users); 0 if
    smaps_rollup cannot be read."""
    try:
        return _status_kib(pid, "Pss", "smaps_rollup")
    except OSError:
        return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid):
    """Thread ids of pid ([] once it is gone)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def _all_stats():
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat(int(name))
            if st:
                stats[st.pid] = st
    return stats


def children(pid):
    """Direct children of pid, zombies included."""
    return sorted(p for p, st in _all_stats().items() if st.ppid == pid)


def descendants(root):
    """Every process below `root` (children, their children, ...), as stat lines."""
    stats = _all_stats()
    found = []
    for st in stats.values():
        parent = st.ppid
        while parent and parent != root and parent in stats:
            parent = stats[parent].ppid
        if parent == root and st.pid != root:
            found.append(st)
    return sorted(found)


def qemu_descendants(root):
    """The QEMU processes below `root` that run (zombies left out), as stat lines."""
    return [st for st in descendants(root) if st.comm.startswith("qemu") and st.state != "Z"]


def socket_inodes(pid):
    """Inodes of the sockets pid holds open."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_peer_ports(pid, local_port):
    """Remote ports of the TCP connections pid holds on its `local_port`:
    one per client a server has not closed yet (listening sockets left out)."""
    held = socket_inodes(pid)
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if state != _TCP_LISTEN and inode in held and int(local.rsplit(":", 1)[1], 16) == local_port:
                ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports
