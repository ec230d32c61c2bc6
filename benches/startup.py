#!/usr/bin/env python3
"""Start-up comparison that alternates the two commands run by run.

hyperfine runs every run of one command, then every run of the next; on a shared virtual machine the noise
drifts over a few seconds, which biases such a comparison of two 1-2 ms commands by more than the difference
being measured. This runs A, B, A, B, ... and reports medians and the ratio of medians.

usage: startup.py RUNS 'command A' 'command B'
"""
import statistics
import subprocess
import sys
import time


def main():
    runs, a, b = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
    times = {0: [], 1: []}
    for _ in range(20):  # warm-up
        for cmd in (a, b):
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    for _ in range(runs):
        for i, cmd in enumerate((a, b)):
            t = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times[i].append(time.perf_counter() - t)
    ma, mb = statistics.median(times[0]), statistics.median(times[1])
    print(f"A: {' '.join(a)}\n   median {ma * 1e3:.3f} ms")
    print(f"B: {' '.join(b)}\n   median {mb * 1e3:.3f} ms")
    print(f"A/B = {ma / mb:.2f} ({runs} alternating runs each)")


if __name__ == "__main__":
    main()
