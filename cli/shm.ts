#!/usr/bin/env bun
/**
 * The `shm` executable for Bun (`bun link` puts it on the PATH through package.json's `bin`).
 * Deno users install `cli/mod.ts` instead: `deno install -g -A -n shm …/cli/mod.ts`.
 *
 * @module
 */
import process from "node:process";
import { main } from "./mod.ts";

process.exitCode = main(process.argv.slice(2));
