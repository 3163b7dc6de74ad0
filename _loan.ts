/**
 * A view lent out of a segment until it is settled, shared by `Channel` and `Topic` loans (written in
 * place, then sent or discarded) and the detaching every settled view needs.
 *
 * @module
 */

/** Detaches a view's buffer: the view then has length 0, and nothing can reach the memory through it. */
export function detach(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer;
  if (buffer.detached) return;
  try {
    buffer.transfer(0);
  } catch {
    // Not transferable: cannot happen for the buffers made here (fresh and unpinned).
  }
}

/** The empty view a settled loan or borrow shows. */
export const NO_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Bytes lent in place: `send()` publishes them, dispose without `send()` discards them; either way
 * the view is detached first and `settle` runs once.
 */
export class Loan implements Disposable {
  #bytes: Uint8Array;
  #settle: ((send: boolean) => void) | null;

  constructor(bytes: Uint8Array, settle: (send: boolean) => void) {
    this.#bytes = bytes;
    this.#settle = settle;
  }

  /** The lent bytes; length 0 once sent or discarded. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** True once sent or discarded. */
  get settled(): boolean {
    return this.#settle === null;
  }

  /** Publishes the bytes. */
  send(): void {
    if (this.#settle === null) throw new TypeError("Cannot send the loan: it was already sent or discarded");
    this.#finish(true);
  }

  /** Discards the bytes unless they were sent. Safe to call twice. */
  [Symbol.dispose](): void {
    if (this.#settle !== null) this.#finish(false);
  }

  #finish(send: boolean): void {
    const settle = this.#settle!;
    this.#settle = null;
    detach(this.#bytes);
    this.#bytes = NO_BYTES;
    settle(send);
  }
}
