/**
 * Shared memory for Deno, Bun and Node: a live `Uint8Array` over memory that other processes — Deno,
 * Bun, Node, Python, C — see at once. Pure TypeScript over each runtime's own FFI; nothing to compile.
 *
 * ```ts
 * import { SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: 4096 });   // /dev/shm/psm_… on Linux
 * shm.buf[0] = 1;                                    // visible to every process that opens shm.name
 * const f64 = shm.view(Float64Array, 8, 4);
 * ```
 *
 * Deno needs `--allow-ffi` (and nothing else); Bun needs no flag.
 *
 * @module
 */

export {
  type CreateOptions,
  MAX_SIZE,
  type OpenOptions,
  type OpenOrCreateOptions,
  SharedMemory,
  type TypedArray,
  type TypedArrayConstructor,
} from "./shared_memory.ts";
export type { Backend } from "./platform/_segment.ts";
export {
  AlreadyExistsError,
  NotFoundError,
  PermissionDeniedError,
  ShmError,
  type ShmErrorOptions,
} from "./errors.ts";
export { type Closable, type Owned, type ScopeOptions, SharedMemoryScope } from "./scope.ts";
export {
  enableLeakReport,
  type LeakedSegment,
  leakedSegments,
  type LeakReportOptions,
} from "./leak_report.ts";
export { ftok } from "./ftok.ts";
export type {
  FileCreateOptions,
  FileOpenOptions,
  SysvCreateOptions,
  SysvOpenOptions,
  SysvStat,
} from "./shared_memory.ts";
export { ShareableList, type ShareableListOptions, type ShareableValue } from "./shareable_list.ts";
export {
  type MapValue,
  type SetOptions,
  SharedMap,
  type SharedMapOpenOptions,
  type SharedMapOptions,
} from "./shared_map.ts";
export { Mutex, MutexGuard } from "./mutex.ts";
export { Semaphore } from "./semaphore.ts";
export { Condition } from "./condition.ts";
export { Barrier } from "./barrier.ts";
export type { WaitOptions } from "./_validate.ts";
export {
  BrokenBarrierError,
  ChannelCorruptError,
  CorruptSegmentError,
  NotHeldError,
  TimeoutError,
} from "./errors.ts";
export { type Interest, type Ready, WaitSet } from "./wait_set.ts";
export {
  Channel,
  type ChannelBorrow,
  ChannelEndedError,
  type ChannelLoan,
  type ChannelOptions,
} from "./channel.ts";
export { Subscription, Topic, type TopicOptions, type TopicPolicy } from "./topic.ts";
