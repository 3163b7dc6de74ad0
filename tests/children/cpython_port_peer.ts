// The other process of tests/cpython_port_test.ts, run under Deno or Bun.
//   write NAME TEXT   attach by name, write TEXT at byte 0, close (CPython's _attach_existing_shmem_then_write)
//   scope             create a 10-byte segment in a SharedMemoryScope, print its name, wait to be killed
//   attach NAME       attach by name, close, exit (a reader that must not destroy the segment)
import { SharedMemory, SharedMemoryScope } from "../../mod.ts";
import { childArgs } from "./_child.ts";

const [command, name, text] = childArgs();

switch (command) {
  case "write": {
    using shm = SharedMemory.open(name!);
    shm.buf.set(new TextEncoder().encode(text!));
    break;
  }
  case "scope": {
    const scope = new SharedMemoryScope();
    const shm = scope.create({ size: 10 });
    console.log(shm.name);
    setInterval(() => {}, 1000); // until SIGTERM
    break;
  }
  case "attach": {
    SharedMemory.open(name!).close();
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
