// A worker for tests/children/scale_child.ts: another thread of the child takes the mutexes its
// async waits will wait for, so that the waits probe a live holder that is not their own thread.
// Message in: the segment names (mutex @8 of each); out: "locked". Message "unlock": unlocks them.
import { Mutex, SharedMemory } from "../../mod.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<string[] | "unlock">) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

let held: { shm: SharedMemory; mutex: Mutex }[] = [];

scope.onmessage = (event) => {
  if (event.data === "unlock") {
    for (const h of held) {
      h.mutex.unlock();
      h.shm.close();
    }
    held = [];
    scope.postMessage("unlocked");
    return;
  }
  held = event.data.map((name) => {
    const shm = SharedMemory.open(name);
    const mutex = new Mutex(shm, 8);
    mutex.lockSync();
    return { shm, mutex };
  });
  scope.postMessage("locked");
};
