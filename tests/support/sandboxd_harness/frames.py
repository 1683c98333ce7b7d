"""The binary frames of WS_PROTOCOL.md ("Binary frames"):

    kind (1 byte) | n (1 byte) | exec id (n bytes) | seq, u64 BE (output only) | data

Output (stdout 0x01, stderr 0x02) and a file being read (0x03, with its
offset where output has its seq) come from the daemon and are parsed here;
stdin (0x10, and 0x11 for the last piece) and a file being written (0x12) go
to it and are built here.
"""
import struct

STDOUT = 0x01
STDERR = 0x02
STDIN = 0x10
STDIN_EOF = 0x11
FILE_DATA = 0x03
FILE_UPLOAD = 0x12

_SEQ = struct.Struct(">Q")


class FrameError(ValueError):
    """A binary frame from the daemon that does not follow the layout."""


class OutputFrame:
    """One stdout or stderr frame. Keeps the frame as it came and the offset of
    its data, so counting bytes (`size`) copies nothing; `payload` slices."""

    __slots__ = ("kind", "exec", "seq", "frame", "offset")

    def __init__(self, kind, exec_id, seq, frame, offset):
        self.kind = kind
        self.exec = exec_id
        self.seq = seq
        self.frame = frame
        self.offset = offset

    @property
    def size(self):
        return len(self.frame) - self.offset

    @property
    def payload(self):
        return self.frame[self.offset:]

    def __repr__(self):
        stream = {STDOUT: "stdout", STDERR: "stderr"}.get(self.kind, hex(self.kind))
        return f"OutputFrame({stream}, exec={self.exec!r}, seq={self.seq}, {self.size} bytes)"


def parse_output(frame):
    """An output frame from the daemon; FrameError if it is not one."""
    if len(frame) < 2:
        raise FrameError(f"binary frame of {len(frame)} bytes")
    kind, n = frame[0], frame[1]
    if kind not in (STDOUT, STDERR, FILE_DATA):
        raise FrameError(f"binary frame of kind {kind:#x} from the daemon")
    if not 1 <= n <= 64 or len(frame) < 2 + n + _SEQ.size:
        raise FrameError(f"output frame of {len(frame)} bytes with an id of {n}")
    exec_id = frame[2:2 + n].decode("ascii")
    (seq,) = _SEQ.unpack_from(frame, 2 + n)
    return OutputFrame(kind, exec_id, seq, frame, 2 + n + _SEQ.size)


def stdin_frame(exec_id, data=b"", eof=False):
    """A stdin frame for `exec_id`; with `eof`, the exec's stdin ends after `data`."""
    name = exec_id.encode("ascii")
    return bytes([STDIN_EOF if eof else STDIN, len(name)]) + name + data


def upload_frame(transfer, data):
    """A piece of the file a file.write with `transfer` sends."""
    name = transfer.encode("ascii")
    return bytes([FILE_UPLOAD, len(name)]) + name + data
