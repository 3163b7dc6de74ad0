/**
 * System V and file-backed segments against the POSIX backend, in the same run and runtime:
 *
 * 1. a SysV cycle of a 4 KiB segment: create (`shmget` + `shmat`), attach a second handle by id
 *    (`IPC_STAT` + `shmat`), write and read one byte through them, detach both (`shmdt`), remove
 *    (`IPC_RMID`); against the same cycle on a POSIX segment (create, open, close, close, unlink);
 * 2. the same cycle on a 4 KiB file in the OS temp folder, against the POSIX one.
 *
 * Each figure is the median over batches of the time of one cycle; the two sides alternate batch by
 * batch, so a burst of load from other processes weighs on both. Everything is removed, also on
 * failure.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { SharedMemory } from "../mod.ts";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import { median, uniquePrefix } from "./core/_util.ts";

const SIZE = 4096;

/** One POSIX cycle: create, open, one byte each way, close both, unlink. */
function posixCycle(name: string): void {
  const a = SharedMemory.create({ name, size: SIZE });
  try {
    const b = SharedMemory.open(name);
    a.buf[0] = 1;
    if (b.buf[0] !== 1) throw new Error("The POSIX segment is not shared");
    b.close();
  } finally {
    a.close();
    a.unlink();
  }
}

/** One SysV cycle: create (IPC_PRIVATE), attach by id, one byte each way, detach both, IPC_RMID. */
function sysvCycle(): void {
  const a = SharedMemory.create({ backend: "sysv", size: SIZE });
  try {
    const b = SharedMemory.open({ backend: "sysv", id: a.id! });
    a.buf[0] = 1;
    if (b.buf[0] !== 1) throw new Error("The System V segment is not shared");
    b.close();
  } finally {
    a.close();
    a.unlink();
  }
}

/** One file cycle: create the file, open it again, one byte each way, close both, unlink. */
function fileCycle(path: string): void {
  const a = SharedMemory.create({ backend: "file", path, size: SIZE });
  try {
    const b = SharedMemory.open({ backend: "file", path });
    a.buf[0] = 1;
    if (b.buf[0] !== 1) throw new Error("The file mapping is not shared");
    b.close();
  } finally {
    a.close();
    a.unlink();
  }
}

/** µs per cycle, median over batches, the two sides alternating. */
function compare(ctx: BenchContext, ours: () => void, reference: () => void): [number, number] {
  const batches = ctx.quick ? 5 : 31;
  const perBatch = ctx.quick ? 20 : 200;
  const time = (cycle: () => void) => {
    const start = performance.now();
    for (let i = 0; i < perBatch; i++) cycle();
    return ((performance.now() - start) * 1000) / perBatch;
  };
  for (let i = 0; i < 3; i++) time(ours), time(reference); // warm-up
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < batches; r++) {
    if (r % 2) {
      a.push(time(ours));
      b.push(time(reference));
    } else {
      b.push(time(reference));
      a.push(time(ours));
    }
  }
  return [median(a), median(b)];
}

const suite: BenchSuite = (ctx: BenchContext): Promise<BenchRow[]> => {
  const name = `${uniquePrefix()}_cycle`;
  const posix = () => posixCycle(name);
  const [sysv, posixForSysv] = compare(ctx, sysvCycle, posix);
  const dir = mkdtempSync(`${tmpdir()}/shmbench-file-`);
  let rows: BenchRow[];
  try {
    const path = `${dir}/cycle.bin`;
    const [file, posixForFile] = compare(ctx, () => fileCycle(path), posix);
    rows = [
      {
        name: "4 KiB System V cycle: create, attach by id, detach both, IPC_RMID",
        unit: "µs",
        ours: sysv,
        reference: posixForSysv,
        referenceName: "POSIX shm cycle: create, open, close both, unlink",
        higherIsBetter: false,
      },
      {
        name: "4 KiB file-backed cycle (OS temp folder): create, open, close both, unlink",
        unit: "µs",
        ours: file,
        reference: posixForFile,
        referenceName: "POSIX shm cycle: create, open, close both, unlink",
        higherIsBetter: false,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return Promise.resolve(rows);
};

export default suite;
