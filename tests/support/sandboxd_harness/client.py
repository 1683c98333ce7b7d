"""A synchronous client of the daemon's WebSocket protocol (WS_PROTOCOL.md),
on Debian's python3-websocket (websocket-client).

What arrives while the client waits for something else is kept, never lost:
responses by request id (`responses`), and events, id-less errors and output
frames in arrival order (`inbox`: dicts for JSON frames, OutputFrame for
binary ones). So a test can wait for "the exit event of exec X" and then look
at the output that came before it.

A benchmark that counts gigabytes does not want them kept: `next_item` and
`exec_items` hand frames over as they come and keep only what they skip.
"""
import itertools
import json
import socket
import struct
import time

import websocket

from sandboxd_harness.frames import FILE_DATA, STDERR, STDOUT, OutputFrame, parse_output, stdin_frame, upload_frame


class ServerError(Exception):
    """An error response: `frame` is the whole of it, `code` its code."""

    def __init__(self, frame):
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame
        self.code = frame.get("code")


class ConnectionClosed(ConnectionError):
    """The daemon closed the connection; `code` is its close code (None without one)."""

    def __init__(self, code, reason=b""):
        super().__init__(f"closed by the server with {code} {reason!r}")
        self.code = code


class ProtocolError(Exception):
    """The daemon said something WS_PROTOCOL.md does not allow."""


def is_output(item, exec_id=None, kind=None):
    return isinstance(item, OutputFrame) and exec_id in (None, item.exec) and kind in (None, item.kind)


def is_event(item, name, exec_id=None):
    return (isinstance(item, dict) and item.get("type") == "event" and item.get("event") == name
            and exec_id in (None, item.get("exec")))


def is_error(item):
    """An error that answers no request (a bad frame, stdin refused, ...)."""
    return isinstance(item, dict) and item.get("type") == "error"


def _belongs_to(item, exec_id):
    return item.exec == exec_id if isinstance(item, OutputFrame) else (
        item.get("type") == "event" and item.get("exec") == exec_id)


class Client:
    def __init__(self, url, token, timeout=120, headers=()):
        """Connects, with `token` as the bearer token (None: no Authorization
        header), and reads the hello (`self.hello`). `timeout` bounds every
        read that is given no deadline of its own."""
        header = list(headers) + ([f"Authorization: Bearer {token}"] if token else [])
        self.ws = websocket.create_connection(url, header=header, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self._socket_timeout = timeout
        self.local_port = self.ws.sock.getsockname()[1]
        self._ids = itertools.count(1)
        self.responses = {}
        self.inbox = []
        self.close_code = None
        hello = self._read(None)
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            raise ProtocolError(f"expected a hello, got {hello!r}")
        self.hello = hello

    # --- the connection ---------------------------------------------------

    def close(self):
        """Closes with a close frame (and waits briefly for the daemon's)."""
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 — already closed or reset: closed either way
            pass

    def drop(self):
        """Vanishes without a close frame, as a client whose network died."""
        self.ws.sock.shutdown(socket.SHUT_RDWR)
        self.ws.sock.close()

    # --- sending ------------------------------------------------------------

    def send(self, op, **members):
        """Sends a request and returns its id, without waiting."""
        rid = next(self._ids)
        self.ws.send(json.dumps({"id": rid, "op": op, **members}))
        return rid

    def send_stdin(self, exec_id, data, eof=False):
        self.ws.send_binary(stdin_frame(exec_id, data, eof))

    def send_upload(self, transfer, data):
        self.ws.send_binary(upload_frame(transfer, data))

    # --- receiving ----------------------------------------------------------

    def _read(self, timeout):
        """The next frame off the wire: a dict, or an OutputFrame."""
        timeout = self.timeout if timeout is None else max(timeout, 0.001)
        if timeout != self._socket_timeout:
            self.ws.settimeout(timeout)
            self._socket_timeout = timeout
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"nothing from the daemon within {timeout:.1f} s; inbox: {self.inbox[-5:]!r}") from None
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return parse_output(data)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(data)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.close_code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
            raise ConnectionClosed(self.close_code, data[2:])
        raise ProtocolError(f"unexpected opcode {opcode}")

    def _file_response(self, item):
        """Files a response under its id; False for anything else."""
        if isinstance(item, dict) and item.get("type") in ("response", "error") and item.get("id") is not None:
            self.responses[item["id"]] = item
            return True
        return False

    def receive(self, timeout=None):
        """Reads one frame, files it (a response under its id, anything else
        at the end of the inbox) and returns it."""
        item = self._read(timeout)
        if not self._file_response(item):
            self.inbox.append(item)
        return item

    def next_item(self, timeout=None):
        """The oldest event, id-less error or output frame not yet taken:
        the inbox's first, or else the next off the wire, not kept.
        Responses read on the way are filed."""
        if self.inbox:
            return self.inbox.pop(0)
        while True:
            item = self._read(timeout)
            if not self._file_response(item):
                return item

    # --- waiting --------------------------------------------------------------

    def _remaining(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what}; inbox: {self.inbox[-5:]!r}")
        return left

    def wait_response(self, rid, timeout=None):
        """The response (or error) to request `rid`, taken out of `responses`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while rid not in self.responses:
            self.receive(self._remaining(deadline, f"no response to request {rid!r}"))
        return self.responses.pop(rid)

    def call(self, op, **members):
        """Sends a request and returns its result; ServerError if it failed."""
        frame = self.wait_response(self.send(op, **members))
        if frame["type"] == "error":
            raise ServerError(frame)
        return frame["result"]

    def error_of(self, op, **members):
        """Sends a request that must fail and returns the error frame."""
        frame = self.wait_response(self.send(op, **members))
        if frame["type"] != "error":
            raise AssertionError(f"{op} was meant to fail: {frame}")
        return frame

    def wait_inbox(self, match, timeout=120):
        """Takes the first inbox item for which `match(item)` is true out of
        the inbox, reading on until one comes."""
        deadline = time.monotonic() + timeout
        while True:
            for i, item in enumerate(self.inbox):
                if match(item):
                    return self.inbox.pop(i)
            self.receive(self._remaining(deadline, f"nothing matched within {timeout} s"))

    def wait_event(self, name, exec_id=None, timeout=120, **members):
        """The first event `name` (of `exec_id`, with these members) in the inbox, taken."""
        return self.wait_inbox(lambda f: is_event(f, name, exec_id) and all(f.get(k) == v for k, v in members.items()),
                               timeout)

    def wait_exit(self, exec_id, timeout=120):
        return self.wait_event("exec.exit", exec_id, timeout)

    def wait_error(self, timeout=120):
        """The first error that answers no request, taken."""
        return self.wait_inbox(is_error, timeout)

    # --- output -----------------------------------------------------------------

    def output_frames(self, exec_id, kind=None):
        """The output frames of exec_id in the inbox, in order, left there."""
        return [f for f in self.inbox if is_output(f, exec_id, kind)]

    def output_of(self, exec_id, kind=STDOUT):
        """Takes the output frames of exec_id (stdout by default) out of the inbox, joined."""
        taken = [f for f in self.inbox if is_output(f, exec_id, kind)]
        self.inbox = [f for f in self.inbox if not is_output(f, exec_id, kind)]
        return b"".join(f.payload for f in taken)

    def exec_items(self, exec_id, request_id=None, timeout=None):
        """Yields the output frames and events of exec_id in arrival order, up
        to and including its exec.exit: first those in the inbox, then those
        off the wire (not kept). What belongs to other execs goes to the inbox.
        With `request_id` (the exec.start that started it), raises ServerError
        as soon as that request's error arrives. `timeout` bounds the whole."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        mine = [f for f in self.inbox if _belongs_to(f, exec_id)]
        self.inbox = [f for f in self.inbox if not _belongs_to(f, exec_id)]
        for item in mine:
            yield item
            if is_event(item, "exec.exit"):
                return
        while True:
            item = self._read(self._remaining(deadline, f"exec {exec_id} did not exit within {timeout} s"))
            if self._file_response(item):
                if request_id is not None and item["id"] == request_id:
                    del self.responses[request_id]
                    if item["type"] == "error":
                        raise ServerError(item)
                continue
            if not _belongs_to(item, exec_id):
                self.inbox.append(item)
                continue
            yield item
            if is_event(item, "exec.exit"):
                return

    # --- files -------------------------------------------------------------------

    def read_file(self, sandbox, path, on_data=None, transfer=None, timeout=None, **members):
        """file.read. Hands each piece to `on_data` as it comes (nothing kept),
        or, without it, returns the whole file: (result, bytes or None).
        Checks that the offsets follow each other. ServerError if it failed."""
        transfer = transfer or f"read-{next(self._ids)}"
        rid = self.send("file.read", sandbox=sandbox, path=path, transfer=transfer, **members)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pieces = [] if on_data is None else None
        offset = 0
        while rid not in self.responses:
            item = self._read(self._remaining(deadline, f"file.read of {path} did not end"))
            if self._file_response(item):
                continue
            if isinstance(item, OutputFrame) and item.kind == FILE_DATA and item.exec == transfer:
                if item.seq != offset:
                    raise ProtocolError(f"file data at offset {item.seq}, expected {offset}")
                offset += item.size
                (pieces.append if on_data is None else on_data)(item.payload)
            else:
                self.inbox.append(item)
        frame = self.responses.pop(rid)
        if frame["type"] == "error":
            raise ServerError(frame)
        if frame["result"]["size"] != offset:
            raise ProtocolError(f"file.read answered size {frame['result']['size']} after {offset} bytes")
        return frame["result"], (None if pieces is None else b"".join(pieces))

    def write_file(self, sandbox, path, data, size=None, transfer=None, chunk=256 << 10, timeout=None, **members):
        """file.write of `data` (bytes, or an iterable of byte pieces with
        `size` given), sent in frames of at most `chunk`. Returns the result;
        ServerError if it failed."""
        transfer = transfer or f"write-{next(self._ids)}"
        if isinstance(data, (bytes, bytearray)):
            size = len(data)
            data = [data]
        rid = self.send("file.write", sandbox=sandbox, path=path, size=size, transfer=transfer, **members)
        for piece in data:
            for i in range(0, len(piece), chunk):
                self.send_upload(transfer, piece[i:i + chunk])
        frame = self.wait_response(rid, timeout)
        if frame["type"] == "error":
            raise ServerError(frame)
        return frame["result"]

    def run(self, sandbox, argv=None, timeout=120, **members):
        """exec.start (argv, or `shell=` and any other member) and everything
        up to its exit: (exit event, stdout, stderr)."""
        if argv is not None:
            members["argv"] = argv
        started = self.call("exec.start", sandbox=sandbox, **members)
        exec_id = started["exec"]["id"]
        if started["existing"]:
            raise ProtocolError(f"exec {exec_id} already existed: exec.start attached nothing")
        # All that is in the inbox now came before the response.
        if any(is_event(f, "exec.exit", exec_id) for f in self.inbox):
            raise ProtocolError(f"exec.exit of {exec_id} before the exec.start response")
        out, err = [], []
        exit_event = None
        for item in self.exec_items(exec_id, timeout=timeout):
            if isinstance(item, OutputFrame):
                (out if item.kind == STDOUT else err).append(item.payload)
            else:
                exit_event = item
        if exit_event is None or not is_event(exit_event, "exec.exit"):
            raise ProtocolError(f"exec {exec_id}: its items ended without exec.exit")
        return exit_event, b"".join(out), b"".join(err)


__all__ = ["Client", "ConnectionClosed", "ProtocolError", "ServerError", "STDERR", "STDOUT",
           "is_error", "is_event", "is_output"]
