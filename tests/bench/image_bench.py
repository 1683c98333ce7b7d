#!/usr/bin/env python3
"""Boot to ready of the initramfs image (`mini`) against the layered
Debian image (`default`), and `python3 -c pass` cold (first run after boot:
every page read from the squashfs and decompressed) and warm, in the same run,
the images taking turns so drift in the machine's load hits both alike.

    IMAGE_BENCH_RUNS=N (default 7) boots of each image.

Prints p50/p95 and the Debian/initramfs ratio; fails only when a boot fails.
"""
import os
import re
import statistics
import subprocess
import sys

HOST = os.environ["SANDBOXD_HOST"]
RUNS = int(os.environ.get("IMAGE_BENCH_RUNS", "7"))
READY = re.compile(r"agent ready after (\d+) ms")
PYTHON_TIMES = ("s=$(date +%s%N); python3 -c pass; m=$(date +%s%N); python3 -c pass; e=$(date +%s%N); "
                "echo $(((m-s)/1000000)) $(((e-m)/1000000))")


def boot(image, command):
    result = subprocess.run([HOST, "run", "--image", image, "--timing", "--net", "none", "--"] + command,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{image}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return int(READY.search(result.stderr).group(1)), result.stdout


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main():
    ready = {"mini": [], "default": []}
    cold, warm = [], []
    for _ in range(RUNS):
        ms, _ = boot("mini", ["true"])
        ready["mini"].append(ms)
        ms, out = boot("default", ["bash", "-c", PYTHON_TIMES])
        ready["default"].append(ms)
        first, second = (int(v) for v in out.split())
        cold.append(first)
        warm.append(second)
    print(f"boot to ready, {RUNS} boots each, TCG or KVM as the daemon found it:")
    for image, values in ready.items():
        print(f"  {image:8} p50 {statistics.median(values):6.0f} ms   p95 {percentile(values, 95):6.0f} ms")
    ratio = statistics.median(ready["default"]) / statistics.median(ready["mini"])
    print(f"  default (Debian) / mini (initramfs), p50: {ratio:.2f}x")
    print(f"python3 -c pass in default (Debian): cold p50 {statistics.median(cold):.0f} ms (p95 {percentile(cold, 95)}), "
          f"warm p50 {statistics.median(warm):.0f} ms (p95 {percentile(warm, 95)})")


if __name__ == "__main__":
    sys.exit(main())
