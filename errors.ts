/**
 * The errors this module throws when the operating system refuses something.
 *
 * Bad arguments are reported as `TypeError` or `RangeError` before any system call; everything the
 * OS refuses is a {@linkcode ShmError}, or one of its subclasses for the causes callers handle most.
 *
 * @module
 */

/** What a {@linkcode ShmError} carries besides its message. */
export interface ShmErrorOptions {
  /** Symbolic error code, such as `"EEXIST"` (or a Windows `ERROR_*` name). */
  code: string;
  /** The numeric errno (or Windows error) the call reported. */
  errno: number;
  /** The system call that failed, such as `"shm_open"`. */
  syscall: string;
  /** The segment the call was about (name, path, key), when there is one. */
  segment?: string;
  /** An underlying error. */
  cause?: unknown;
}

/**
 * A system call made on behalf of a shared memory operation failed.
 *
 * @example Tell the causes apart
 * ```ts
 * import { ShmError, SharedMemory } from "@x/shm";
 *
 * try {
 *   SharedMemory.open("no-such-segment");
 * } catch (error) {
 *   if (error instanceof ShmError) console.log(error.code, error.syscall); // ENOENT shm_open
 * }
 * ```
 */
export class ShmError extends Error {
  /** Symbolic error code, such as `"EEXIST"`. */
  readonly code: string;
  /** The numeric errno (or Windows error code). */
  readonly errno: number;
  /** The system call that failed. */
  readonly syscall: string;
  /** The segment the failing call was about, when there is one. */
  readonly segment: string | undefined;

  /** Builds an error; this module builds them through its private error factory. */
  constructor(message: string, options: ShmErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.segment = options.segment;
  }
}

/**
 * The segment (or file, or key) already exists: `EEXIST`.
 *
 * @example
 * ```ts
 * import { AlreadyExistsError, SharedMemory } from "@x/shm";
 *
 * const a = SharedMemory.create({ name: "taken", size: 64 });
 * try {
 *   SharedMemory.create({ name: "taken", size: 64 });
 * } catch (error) {
 *   console.log(error instanceof AlreadyExistsError); // true
 * }
 * a.close();
 * a.unlink();
 * ```
 */
export class AlreadyExistsError extends ShmError {}

/**
 * The segment (or file, or key) does not exist: `ENOENT`, or `EINVAL`/`EIDRM` for a SysV id.
 *
 * @example
 * ```ts
 * import { NotFoundError, SharedMemory } from "@x/shm";
 *
 * try {
 *   SharedMemory.open("missing");
 * } catch (error) {
 *   console.log(error instanceof NotFoundError); // true
 * }
 * ```
 */
export class NotFoundError extends ShmError {}

/**
 * The caller may not do this to the segment: `EACCES` or `EPERM`.
 *
 * @example
 * ```ts
 * import { PermissionDeniedError, SharedMemory } from "@x/shm";
 *
 * try {
 *   SharedMemory.open("owned-by-someone-else");
 * } catch (error) {
 *   if (error instanceof PermissionDeniedError) console.log("ask its owner for access");
 * }
 * ```
 */
export class PermissionDeniedError extends ShmError {}

/**
 * A wait for a lock, a permit, a condition or a barrier ran past its `timeout`.
 *
 * @example
 * ```ts
 * import { Mutex, SharedMemory, TimeoutError } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: Mutex.BYTE_LENGTH });
 * const mutex = new Mutex(shm, 0);
 * try {
 *   using _guard = await mutex.lock({ timeout: 500 });
 *   // … work with the shared data …
 * } catch (error) {
 *   if (error instanceof TimeoutError) console.log("still held by someone else after 500 ms");
 * }
 * ```
 */
export class TimeoutError extends Error {
  /** The timeout that ran out, in milliseconds. */
  readonly timeout: number;

  /** Builds the error; `message` says what was being waited for. */
  constructor(message: string, timeout: number) {
    super(message);
    this.name = "TimeoutError";
    this.timeout = timeout;
  }
}

/**
 * A thread tried to unlock a mutex it does not hold (nobody holds it, or another thread or process
 * does). Nothing was changed.
 *
 * @example
 * ```ts
 * import { Mutex, NotHeldError, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: Mutex.BYTE_LENGTH });
 * const mutex = new Mutex(shm, 0);
 * try {
 *   mutex.unlock();
 * } catch (error) {
 *   console.log(error instanceof NotHeldError); // true: it was never locked
 * }
 * ```
 */
export class NotHeldError extends Error {
  /** Builds the error; `message` says what was attempted and who holds the mutex. */
  constructor(message: string) {
    super(message);
    this.name = "NotHeldError";
  }
}

/**
 * A barrier's round was broken: a party waiting in it died (killed, crashed, exited) before all
 * parties arrived. Every party waiting in that round gets this error; the barrier has already
 * started a fresh round, so the survivors (and a replacement for the dead party) can wait again.
 *
 * @example
 * ```ts
 * import { Barrier, BrokenBarrierError, SharedMemory, TimeoutError } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: Barrier.byteLength(2) });
 * const barrier = new Barrier(shm, 0, 2);
 * try {
 *   await barrier.wait({ timeout: 100 }); // nobody else comes here
 * } catch (error) {
 *   if (error instanceof BrokenBarrierError) console.log("a party died: start the step again");
 *   else if (error instanceof TimeoutError) console.log("the other party is late");
 * }
 * ```
 */
export class BrokenBarrierError extends Error {
  /** Builds the error; `message` says which party died. */
  constructor(message: string) {
    super(message);
    this.name = "BrokenBarrierError";
  }
}

/**
 * A segment holds a structure this module wrote (a channel, a shared map), but its contents are in a
 * state no process using the module can leave them in: something else wrote into the segment. The
 * call that found it throws this instead of returning garbage. It is not an operating system error:
 * there is no errno. {@linkcode ChannelCorruptError} is the channel's kind of it.
 *
 * @example
 * ```ts
 * import { CorruptSegmentError, SharedMap } from "@x/shm";
 *
 * using map = SharedMap.create({ capacity: 16 });
 * map.set("a", "1");
 * map.shm.buf.fill(0x7f, 512, 2048); // a stray writer overwrites the index
 * try {
 *   map.get("a");
 * } catch (error) {
 *   if (error instanceof CorruptSegmentError) console.log(error.segment === map.name); // true
 * }
 * ```
 */
export class CorruptSegmentError extends Error {
  /** The name of the damaged segment. */
  readonly segment: string;

  /** Builds the error; `message` says what was attempted and what was found. */
  constructor(message: string, segment: string) {
    super(message);
    this.name = "CorruptSegmentError";
    this.segment = segment;
  }
}

/**
 * A channel's shared state is in a state no sender or receiver can leave it in (a head ahead of its
 * tail, a tail more than a ring ahead, a record with an impossible length): something else wrote
 * into its segment. The call that found it throws this instead of delivering garbage or reporting a
 * send nobody can receive. It is not an operating system error: there is no errno.
 *
 * @example
 * ```ts
 * import { Channel, ChannelCorruptError } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 1024 });
 * new Int32Array(ch.shm.buf.buffer)[32] = 5; // the head, moved past the tail by a stray write
 * using tx = Channel.open(ch.name);
 * try {
 *   tx.trySend(new Uint8Array(1));
 * } catch (error) {
 *   if (error instanceof ChannelCorruptError) console.log(error.segment === ch.name); // true
 * }
 * ```
 */
export class ChannelCorruptError extends CorruptSegmentError {
  /** Builds the error; `message` says what was attempted and what was found. */
  constructor(message: string, segment: string) {
    super(message, segment);
    this.name = "ChannelCorruptError";
  }
}
