// A process that holds segments through a SharedMemoryScope, then ends in the way the test asks.
// Usage: scope_child.ts <create|attach|openOrCreate|leak> <name> <exit|wait|throw|handled|dispose>
import process from "node:process";
import { enableLeakReport, SharedMemory, SharedMemoryScope } from "../../mod.ts";

const [how, name = "", end] = process.argv.slice(2);
if (!name) throw new Error("usage: scope_child.ts <how> <name> <end>");

if (how === "leak") {
  if (end !== "env") enableLeakReport();
  SharedMemory.create({ name, size: 4096 }); // never unlinked: must be reported
  const tidy = SharedMemory.create({ name: name + "_tidy", size: 64 });
  tidy.close();
  tidy.unlink();
  const scope = new SharedMemoryScope();
  scope.create({ name: name + "_scoped", size: 64 }); // the scope unlinks it before the report
  console.log("ready");
} else {
  const scope = new SharedMemoryScope();
  const shm = how === "create"
    ? scope.create({ name, size: 4096 })
    : how === "attach"
    ? scope.open(name)
    : scope.openOrCreate(name, { size: 4096 });
  shm.buf[1] = 0x5a;
  if (end === "handled") {
    process.on("SIGTERM", () => {
      console.log("own handler ran");
      setTimeout(() => process.exit(7), 50);
    });
  }
  console.log(`ready created=${shm.created}`);
  if (end === "throw") throw new Error("deliberate crash");
  if (end === "dispose") scope.dispose();
  if (end === "wait" || end === "handled") setTimeout(() => console.log("not killed"), 30_000);
}
