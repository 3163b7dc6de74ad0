"""Reference for bench/sync_bench.ts: multiprocessing.Lock acquire + release, in ns per pair.

Usage: python3 mp_lock.py <iterations> <repetitions>; prints one figure per repetition.
"""
import multiprocessing
import sys
import time

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
repetitions = int(sys.argv[2]) if len(sys.argv) > 2 else 5
lock = multiprocessing.Lock()
acquire, release = lock.acquire, lock.release
for _ in range(repetitions):
    start = time.perf_counter_ns()
    for _ in range(iterations):
        acquire()
        release()
    print(f"{(time.perf_counter_ns() - start) / iterations:.3f}", flush=True)
