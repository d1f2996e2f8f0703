#!/usr/bin/env node
// Test stand-in (not llama-server): appends a line to $STAND_IN_SPAWN_MARKER
// every time it is run at all (even --help), so a test can prove that a
// rejected request spawned nothing.
import { appendFileSync } from "node:fs";

if (process.env.STAND_IN_SPAWN_MARKER) appendFileSync(process.env.STAND_IN_SPAWN_MARKER, `${process.argv.slice(2).join(" ")}\n`);
const { standIn } = await import("./stand-in-common.mjs");
const s = standIn("stand-in-records-spawn");
await s.serve(() => 200);
