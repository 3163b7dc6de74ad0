"""The Python process of tests/mixed_runtimes_test.ts, with multiprocessing.shared_memory + NumPy.

  fill NAME COUNT   attach to NAME and write the job values 1..COUNT as int32 at byte 64
  read NAME         attach to NAME and print {"sum": int32 at byte 8, "counts": int32 x3 at byte 12}
"""
import json
import sys

import numpy as np
from multiprocessing import resource_tracker, shared_memory

mode, name = sys.argv[1], sys.argv[2]
shm = shared_memory.SharedMemory(name=name)
# Python < 3.13 registers attached segments and would unlink this one at exit (gh-82300).
resource_tracker.unregister(shm._name, "shared_memory")
words = np.ndarray((shm.size // 4,), dtype=np.int32, buffer=shm.buf)
if mode == "fill":
    count = int(sys.argv[3])
    words[16:16 + count] = np.arange(1, count + 1, dtype=np.int32)
    print("filled", flush=True)
elif mode == "read":
    print(json.dumps({"sum": int(words[2]), "counts": words[3:6].tolist()}), flush=True)
else:
    raise SystemExit(f"unknown mode {mode}")
del words
shm.close()
