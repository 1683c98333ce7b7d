#!/usr/bin/env python3
"""Writes the seed corpora of the wire codec fuzz targets: a few valid packets
per codec, spelled out below in hex. Run it from anywhere; it rewrites
corpus/<codec>/seed-*. The TCP and UDP targets read two IPv4 addresses
(source, destination) before the segment, so their seeds start with them."""
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

GUEST, HOST, RESOLVER, SERVER = "0a00020f", "0a000202", "0a000203", "5db8d822"

ARP_REQUEST = ("0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202"
               "000000000000000000000000000000000000")
ARP_REPLY = "0001 0800 06 04 0002 52550a000202 0a000202 525400123456 0a00020f"
ECHO_REQUEST = ("0800 2f11 0a1b 0001 1011121314151617 18191a1b1c1d1e1f 2021222324252627"
                "28292a2b2c2d2e2f 3031323334353637")
PORT_UNREACHABLE = ("0303 f6e6 00000000 4500 0039 04d2 0000 4011 5dd1 0a00020f 0a000203"
                    "9c40 0035 0025 697b")
PING = "4500 0044 1c46 4000 4001 0663 0a00020f 0a000202" + ECHO_REQUEST
DNS_QUERY = "1234 0100 0001 0000 0000 0000 076578616d706c65 03636f6d 00 0001 0001"
UDP_DNS_QUERY = "9c40 0035 0025 697b" + DNS_QUERY
IP_UDP_DNS_QUERY = "4500 0039 04d2 0000 4011 5dd1 0a00020f 0a000203" + UDP_DNS_QUERY
TCP_SYN = ("b26e 01bb 6b8b4567 00000000 a002 faf0 086c 0000"
           "0204 05b4 0402 080a deadbeef 00000000 0103 0307")
IP_TCP_SYN = "4500 003c 3039 4000 4006 c899 0a00020f 5db8d822" + TCP_SYN
TCP_DATA_SACK = ("01bb b26e 00000001 00000002 b018 0200 edfa 0000"
                 "0101 080a 00000005 00000006 0101 050a 0000000a 00000014 78787878787878787878")
IP_WITH_OPTIONS = "4600 0020 0001 0000 4011 cdb7 0a00020f 0a000202 94040000 01020304 05060708"

BOOTP_HEAD = ("01 01 06 00 3903f326 0000 0000 00000000 00000000 00000000 00000000"
              "525400123456 00000000000000000000" + "00" * 192 + "63825363")
DHCP_DISCOVER = (BOOTP_HEAD + "3501 01 3d07 01525400123456 3204 0a00020f 0c07 73616e64626f78"
                 "370b 0103060c0f1a1c33363a3b ff")
DHCP_OFFER = ("02 01 06 00 3903f326 0000 8000 00000000 0a00020f 00000000 00000000"
              "525400123456 00000000000000000000" + "00" * 192 + "63825363"
              "3501 02 3604 0a000202 0104 ffffff00 0304 0a000202 0604 0a000203"
              "0f10 73616e64626f782e696e7465726e616c 0c07 73616e64626f78 1a02 fff0 3304 00015180 ff"
              + "00" * 19)
# Overload 3: more options in the file field, then in sname.
DHCP_OVERLOADED = ("01 01 06 00 00000001 0000 0000 00000000 00000000 00000000 00000000"
                   "525400123456 00000000000000000000"
                   + ("0c01 63 ff" + "00" * 60)          # sname
                   + ("3501 03 3204 0a00020f ff" + "00" * 119)  # file
                   + "63825363 3401 03 0604 08080808 ff")
DHCP_DISCOVER_FRAME = ("ffffffffffff 525400123456 0800"
                       "4500 0135 0000 0000 4011 79b9 00000000 ffffffff"
                       "0044 0043 0121 2131" + DHCP_DISCOVER)

DNS_COMPRESSED_RESPONSE = ("beef 8180 0001 0002 0000 0000"
                           "03777777 076578616d706c65 03636f6d 00 0001 0001"
                           "c00c 0005 0001 0000012c 0002 c010"
                           "c010 0001 0001 00000e10 0004 5db8d822")
DNS_MX_SOA = ("0001 8180 0001 0002 0000 0000"
              "076578616d706c65 03636f6d 00 000f 0001"
              "c00c 000f 0001 00000e10 0009 000a 046d61696c c00c"
              "c00c 0006 0001 00000e10 0026 026e73 c00c 0a686f73746d6173746572 c00c"
              "00000001 00000002 00000003 00000004 00000005")
DNS_AAAA_OPT = ("0002 8180 0001 0001 0000 0001"
                "076578616d706c65 03636f6d 00 001c 0001"
                "c00c 001c 0001 00000e10 0010 26062800022000010248189325c81946"
                "00 0029 04d0 00000000 0000")

SEEDS = {
    "ethernet": {
        "arp": "ffffffffffff 525400123456 0806" + ARP_REQUEST,
        "ping": "52550a000202 525400123456 0800" + PING,
        "dhcp": DHCP_DISCOVER_FRAME,
    },
    "arp": {"request": ARP_REQUEST, "reply": ARP_REPLY},
    "ipv4": {"ping": PING, "udp": IP_UDP_DNS_QUERY, "tcp": IP_TCP_SYN, "options": IP_WITH_OPTIONS},
    "icmp": {"echo": ECHO_REQUEST, "unreachable": PORT_UNREACHABLE},
    "udp": {"dns": GUEST + RESOLVER + UDP_DNS_QUERY},
    "tcp": {"syn": GUEST + SERVER + TCP_SYN, "sack": SERVER + GUEST + TCP_DATA_SACK},
    "dhcp": {"discover": DHCP_DISCOVER, "offer": DHCP_OFFER, "overloaded": DHCP_OVERLOADED},
    "dns": {"query": DNS_QUERY, "compressed": DNS_COMPRESSED_RESPONSE, "mx-soa": DNS_MX_SOA,
            "aaaa-opt": DNS_AAAA_OPT},
}


def main():
    for codec, seeds in SEEDS.items():
        folder = HERE / "corpus" / codec
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, text in seeds.items():
            (folder / f"seed-{name}").write_bytes(bytes.fromhex(text.replace(" ", "")))


if __name__ == "__main__":
    main()
