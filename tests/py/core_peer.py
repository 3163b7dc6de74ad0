"""A Python peer using multiprocessing.shared_memory + NumPy, for the interop tests.

  create        create a segment holding int64 [1, 2, 3, 4, 5]; print its name; wait for a line on
                stdin; print the values as JSON; close and unlink it
  attach NAME   attach to NAME, print its float64[0:4] and size as JSON, double them in place,
                write a UTF-8 string at byte 64, close (without unlinking)
"""
import json
import sys

import numpy as np
from multiprocessing import resource_tracker, shared_memory

mode = sys.argv[1]
if mode == "create":
    shm = shared_memory.SharedMemory(create=True, size=40)
    values = np.ndarray((5,), dtype=np.int64, buffer=shm.buf)
    values[:] = [1, 2, 3, 4, 5]
    print(shm.name, flush=True)
    sys.stdin.readline()
    print(json.dumps(values.tolist()), flush=True)
    del values
    shm.close()
    shm.unlink()
elif mode == "attach":
    shm = shared_memory.SharedMemory(name=sys.argv[2])
    # Python < 3.13 registers attached segments and would unlink this one at exit (gh-82300).
    resource_tracker.unregister(shm._name, "shared_memory")
    values = np.ndarray((4,), dtype=np.float64, buffer=shm.buf)
    print(json.dumps({"size": shm.size, "values": values.tolist()}), flush=True)
    values *= 2
    text = "from python ✓".encode()
    shm.buf[64:64 + len(text)] = text
    del values
    shm.close()
else:
    raise SystemExit(f"unknown mode {mode}")
