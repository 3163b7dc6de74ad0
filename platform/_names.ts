/**
 * Argument checks and name generation shared by the named backends (POSIX and Windows).
 *
 * @module
 */

import { AlreadyExistsError } from "../errors.ts";
import { checkBoolean, checkMode, checkName, checkSize } from "../_validate.ts";
import type { Created, RawOptions } from "./backend.ts";
import type { Segment } from "./_segment.ts";

/** The mode of a new segment when none is given. */
export const DEFAULT_MODE = 0o600;
const GENERATED_NAME_ATTEMPTS = 100;

/** Eight random lower-case hex digits, as Python's generated segment names use. */
export function randomHex8(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** How one named backend makes a segment. */
export interface NamedMaker {
  readonly nameMax: number;
  generateName(): string;
  make(name: string, size: number, mode: number): Segment;
}

/** Checks `{ name?, size, mode?, unlinkOnDispose? }` and creates, trying fresh names when none is given. */
export function createNamed(o: RawOptions, action: string, maker: NamedMaker): Created {
  const size = checkSize(o.size, action);
  const mode = o.mode === undefined ? DEFAULT_MODE : checkMode(o.mode, action);
  const unlinkOnDispose = o.unlinkOnDispose === undefined
    ? true
    : checkBoolean(o.unlinkOnDispose, "unlinkOnDispose", action);
  if (o.name !== undefined) {
    return { segment: maker.make(checkName(o.name, action, maker.nameMax), size, mode), unlinkOnDispose };
  }
  for (let attempt = 1;; attempt++) {
    try {
      return { segment: maker.make(maker.generateName(), size, mode), unlinkOnDispose };
    } catch (error) {
      if (!(error instanceof AlreadyExistsError) || attempt >= GENERATED_NAME_ATTEMPTS) throw error;
    }
  }
}

/** Checks `{ name, readOnly? }` of a named open. */
export function openArguments(o: RawOptions, action: string, nameMax: number): [string, boolean] {
  return [checkName(o.name, action, nameMax), checkBoolean(o.readOnly, "readOnly", action)];
}
