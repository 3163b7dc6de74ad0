// A worker for tests/children/scale_child.ts: another thread of the child takes the mutexes its
// async waits will wait for, so that the waits probe a live holder that is not their own thread.
// Message in: the segment names (mutex @8 of each); out: "locked". Message "unlock": unlocks them.
import { parentPort } from "node:worker_threads";
import { Mutex, SharedMemory } from "../../mod.ts";

let held: { shm: SharedMemory; mutex: Mutex }[] = [];

parentPort!.on("message", (data: string[] | "unlock") => {
  if (data === "unlock") {
    for (const h of held) {
      h.mutex.unlock();
      h.shm.close();
    }
    held = [];
    parentPort!.postMessage("unlocked");
    return;
  }
  held = data.map((name) => {
    const shm = SharedMemory.open(name);
    const mutex = new Mutex(shm, 8);
    mutex.lockSync();
    return { shm, mutex };
  });
  parentPort!.postMessage("locked");
});
