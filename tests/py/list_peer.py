"""Python side of tests/shareable_list_test.ts: CPython's own ShareableList, driven from the command line.

Values travel as typed JSON: {"t": "int"|"float"|"bool"|"none"|"str"|"bytes", "v": ...}, ints as decimal
strings, floats as repr() strings (so nan, inf and -0.0 survive), bytes as hex.

  list_peer.py create NAME   values from stdin -> a new list NAME (left in place for the caller)
  list_peer.py dump NAME     prints {"values": [...], "hex": "..."} of an existing list
  list_peer.py write NAME    [[index, value], ...] from stdin, assigned in order, then dump
  list_peer.py replay        {"values": [...], "ops": [...]}: a fresh private list, the ops, then dump; unlinked
"""
import json
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import ShareableList


def decode(t):
    kind = t["t"]
    if kind == "int":
        return int(t["v"])
    if kind == "float":
        return float(t["v"])
    if kind == "bool":
        return bool(t["v"])
    if kind == "none":
        return None
    if kind == "str":
        return t["v"]
    if kind == "bytes":
        return bytes.fromhex(t["v"])
    raise ValueError(kind)


def encode(v):
    if v is None:
        return {"t": "none"}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if isinstance(v, str):
        return {"t": "str", "v": v}
    if isinstance(v, bytes):
        return {"t": "bytes", "v": v.hex()}
    raise TypeError(type(v))


def untrack(sl):
    # Python 3.8-3.12 unlinks even attached segments when the process exits (gh-82300).
    resource_tracker.unregister(sl.shm._name, "shared_memory")


def dump(sl):
    return {"values": [encode(v) for v in sl], "hex": bytes(sl.shm.buf).hex(), "format": sl.format}


def main():
    mode = sys.argv[1]
    if mode == "create":
        sl = ShareableList([decode(t) for t in json.load(sys.stdin)], name=sys.argv[2])
        untrack(sl)
        print(json.dumps(dump(sl)))
        sl.shm.close()
    elif mode == "dump":
        sl = ShareableList(name=sys.argv[2])
        untrack(sl)
        print(json.dumps(dump(sl)))
        sl.shm.close()
    elif mode == "write":
        sl = ShareableList(name=sys.argv[2])
        untrack(sl)
        for index, t in json.load(sys.stdin):
            sl[index] = decode(t)
        print(json.dumps(dump(sl)))
        sl.shm.close()
    elif mode == "replay":
        spec = json.load(sys.stdin)
        sl = ShareableList([decode(t) for t in spec["values"]])
        try:
            for index, t in spec["ops"]:
                sl[index] = decode(t)
            print(json.dumps(dump(sl)))
        finally:
            sl.shm.close()
            sl.shm.unlink()
    else:
        raise SystemExit(f"unknown mode {mode}")


main()
