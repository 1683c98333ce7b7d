#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-client-hello: ClientHellos as Python's ssl
module (OpenSSL) writes them, and edited forms: split across records, with
GREASE and ECH extensions, with an IP literal SNI. Run it from anywhere; it
rewrites corpus/client_hello/seed-*."""
import pathlib
import ssl
import struct

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "corpus" / "client_hello"


def client_hello(server_hostname=None, alpn=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if maximum:
        ctx.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def split(record, first):
    fragment = record[5:]
    out = b""
    for part in (fragment[:first], fragment[first:]):
        out += bytes([22, 3, 1]) + struct.pack(">H", len(part)) + part
    return out


def extensions_offset(record):
    at = 5 + 4 + 2 + 32
    at += 1 + record[at]
    at += 2 + struct.unpack(">H", record[at:at + 2])[0]
    at += 1 + record[at]
    return at


def inject(record, extra):
    at = extensions_offset(record)
    b = bytearray(record[:at + 2] + extra + record[at + 2:])
    record_length = struct.unpack(">H", b[3:5])[0] + len(extra)
    b[3:5] = struct.pack(">H", record_length)
    b[6:9] = struct.pack(">I", record_length - 4)[1:]
    b[at:at + 2] = struct.pack(">H", struct.unpack(">H", b[at:at + 2])[0] + len(extra))
    return bytes(b)


def extension(kind, data):
    return struct.pack(">HH", kind, len(data)) + data


def sni(name):
    name = name.encode()
    return extension(0, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("seed-*"):
        old.unlink()
    modern = client_hello("api.example.com", ["h2", "http/1.1"])
    no_sni = client_hello(None, None, ssl.TLSVersion.TLSv1_2)
    tls12 = client_hello("www.example.org", ["http/1.1"], ssl.TLSVersion.TLSv1_2)
    seeds = {
        "modern": modern,
        "no-sni-tls12": no_sni,
        "tls12-alpn": tls12,
        "split-2-records": split(modern, 100),
        "split-in-header": split(modern, 2),
        "grease-ech": inject(modern, extension(0x0A0A, b"") + extension(0xFE0D, b"\x00" * 16)),
        "ip-literal": inject(no_sni, sni("192.0.2.7")),
    }
    for name, data in seeds.items():
        (OUT / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
