"""The Python half of examples/numpy_share.ts: NumPy works in place on a matrix Deno or Bun made.

Attaches to the segment NAME, views its first ROWS x COLS float64 values as a NumPy array (no
copy), writes each column's mean after the matrix, centres the matrix in place (subtracts the
means), and prints one line of JSON. It never removes the segment: the TypeScript side owns it.

Run by examples/numpy_share.ts, or by hand while a segment exists:

    python3 examples/numpy_peer.py NAME ROWS COLS

Needs Python 3.8+ and NumPy (pip install numpy).
"""

import json
import sys

import numpy as np
from multiprocessing import shared_memory


def attach(name: str) -> shared_memory.SharedMemory:
    """Attach without letting Python's resource tracker remove the segment at exit (gh-82300)."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    shm = shared_memory.SharedMemory(name=name)
    from multiprocessing import resource_tracker

    resource_tracker.unregister(shm._name, "shared_memory")  # Python 3.8-3.12 would unlink it
    return shm


def main() -> None:
    name, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    shm = attach(name)
    try:
        matrix = np.ndarray((rows, cols), dtype="<f8", buffer=shm.buf)
        means = np.ndarray((cols,), dtype="<f8", buffer=shm.buf, offset=rows * cols * 8)
        means[:] = matrix.mean(axis=0)
        matrix -= means  # in place: the TypeScript process sees this at once
        print(json.dumps({"python": sys.version.split()[0], "numpy": np.__version__, "means": means.tolist()}))
        del matrix, means  # views must go before close()
    finally:
        shm.close()


if __name__ == "__main__":
    main()
