#!/usr/bin/env python3
"""Servers on the host's loopback for the network tests and benchmarks.

  GET  /blob/N    N bytes of a fixed pseudo-random pattern (N up to 1 GiB)
  GET  /small     a short text
  POST /upload    reads the body, answers with its length and SHA-256
  GET  /last-stored  length and SHA-256 of the last file the FTP sink took
  UDP  echo       every datagram sent back as it came; but a DNS query (the
                  one UDP client busybox has in the guest is nslookup) is
                  answered, A 192.0.2.7 for any name, so a round trip can
                  be seen from the guest
  FTP  sink       just enough passive-mode FTP for busybox `ftpput`: STOR
                  reads the data connection and keeps its length and SHA-256
                  (busybox's nc writes in small pieces, so an upload through
                  it measures nc; ftpput copies with large writes)

Prints one line "ready HTTP_PORT UDP_PORT FTP_PORT" on stdout once listening, then
serves until stdin closes or it is killed. `--sha256 N` prints the SHA-256
of /blob/N and exits, so tests can check what the guest received.
"""
import hashlib
import http.server
import socket
import socketserver
import sys
import threading

CHUNK = 1 << 20


def pattern_chunk():
    # 1 MiB of bytes from a fixed seed; the blob repeats it.
    out = bytearray()
    counter = 0
    while len(out) < CHUNK:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:CHUNK])


PATTERN = pattern_chunk()

# "LENGTH SHA256" of the FTP sink's last completed STOR.
last_stored = {"value": "none"}


def blob_sha256(n):
    h = hashlib.sha256()
    full, rest = divmod(n, CHUNK)
    for _ in range(full):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path in ("/small", "/last-stored"):
            body = b"hello from the host\n" if self.path == "/small" else f"{last_stored['value']}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/blob/"):
            try:
                n = int(self.path[len("/blob/"):])
            except ValueError:
                n = -1
            if not 0 <= n <= 1 << 30:
                self.send_error(400)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            full, rest = divmod(n, CHUNK)
            for _ in range(full):
                self.wfile.write(PATTERN)
            self.wfile.write(PATTERN[:rest])
            return
        self.send_error(404)

    def do_POST(self):
        if self.path != "/upload":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        got = 0
        while got < length:
            data = self.rfile.read(min(CHUNK, length - got))
            if not data:
                break
            h.update(data)
            got += len(data)
        body = f"{got} {h.hexdigest()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


def dns_answer(query):
    """The reply to a one-question DNS query, or None if it is not one."""
    if len(query) < 12 or query[2] & 0x80 or query[4:6] != b"\x00\x01":
        return None
    end = 12
    while end < len(query) and query[end] != 0:
        end += 1 + query[end]
    end += 5  # the root label, type and class
    if end > len(query):
        return None
    header = query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 7])
    return header + query[12:end] + answer


def udp_echo(sock):
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(dns_answer(data) or data, peer)


class FtpSink(socketserver.StreamRequestHandler):
    """One control connection: login, TYPE, PASV, STOR, QUIT; anything else 502."""

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        passive = None
        self.reply("220 sink")
        try:
            for raw in self.rfile:
                verb, _, _ = raw.decode("latin-1").strip().partition(" ")
                verb = verb.upper()
                if verb == "USER":
                    self.reply("230 in")
                elif verb in ("PASS", "TYPE"):
                    self.reply("230 in" if verb == "PASS" else "200 ok")
                elif verb == "PASV":
                    if passive:
                        passive.close()
                    passive = socket.create_server(("127.0.0.1", 0))
                    port = passive.getsockname()[1]
                    self.reply(f"227 passive (127,0,0,1,{port >> 8},{port & 255})")
                elif verb == "STOR" and passive:
                    passive.settimeout(30)
                    data, _ = passive.accept()
                    passive.close()
                    passive = None
                    self.reply("150 go")
                    h, got = hashlib.sha256(), 0
                    with data:
                        while chunk := data.recv(CHUNK):
                            h.update(chunk)
                            got += len(chunk)
                    last_stored["value"] = f"{got} {h.hexdigest()}"
                    self.reply("226 stored")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 no")
        finally:
            if passive:
                passive.close()


class FtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--sha256":
        print(blob_sha256(int(sys.argv[2])))
        return
    http_server = Server(("127.0.0.1", 0), Handler)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    ftp_server = FtpServer(("127.0.0.1", 0), FtpSink)
    threading.Thread(target=udp_echo, args=(udp,), daemon=True).start()
    threading.Thread(target=ftp_server.serve_forever, daemon=True).start()
    print(f"ready {http_server.server_address[1]} {udp.getsockname()[1]} {ftp_server.server_address[1]}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
