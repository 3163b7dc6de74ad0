"""Python reference figures for bench/core_bench.ts, measured in the same run as ours.

    python3 python_ref.py fill  <name-prefix> <size> <reps>
        Times, per repetition: SharedMemory(create=True, size) + NumPy fill of every byte.
        close() and unlink() follow, outside the timed part (as in the TypeScript side).
    python3 python_ref.py cycle <name-prefix> <cycles-per-batch> <batches>
        Times batches of: create 4 KiB + attach by name + close both + unlink.

One untimed warm-up precedes the timed part. Prints one JSON object: {"seconds": [...]}, one entry
per repetition (fill) or the mean seconds per cycle of each batch (cycle). Every segment it makes is
unlinked, also on failure.
"""

import json
import sys
import time
from multiprocessing.shared_memory import SharedMemory

import numpy as np

FILL_BYTE = 0xA5


def fill_once(name, size):
    start = time.perf_counter()
    shm = SharedMemory(name=name, create=True, size=size)
    try:
        array = np.ndarray((size,), dtype=np.uint8, buffer=shm.buf)
        array.fill(FILL_BYTE)
        elapsed = time.perf_counter() - start
        del array
    finally:
        shm.close()
        shm.unlink()
    return elapsed


def cycle_once(name, size=4096):
    a = SharedMemory(name=name, create=True, size=size)
    try:
        b = SharedMemory(name=name)
        b.close()
    finally:
        a.close()
        a.unlink()


def main():
    mode, prefix = sys.argv[1], sys.argv[2]
    if mode == "fill":
        size, reps = int(sys.argv[3]), int(sys.argv[4])
        fill_once(f"{prefix}_w", size)
        seconds = [fill_once(f"{prefix}_{i}", size) for i in range(reps)]
    elif mode == "cycle":
        cycles, batches = int(sys.argv[3]), int(sys.argv[4])
        for i in range(max(cycles // 4, 10)):
            cycle_once(f"{prefix}_w{i}")
        seconds = []
        for b in range(batches):
            names = [f"{prefix}_{b}_{i}" for i in range(cycles)]
            start = time.perf_counter()
            for name in names:
                cycle_once(name)
            seconds.append((time.perf_counter() - start) / cycles)
    else:
        raise SystemExit(f"unknown mode {mode!r}: expected fill or cycle")
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
