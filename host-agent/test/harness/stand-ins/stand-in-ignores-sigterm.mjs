#!/usr/bin/env node
// Test stand-in (not llama-server): becomes ready, then ignores SIGTERM, so
// only the supervisor's SIGKILL after the grace period ends it.
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-ignores-sigterm");
process.on("SIGTERM", () => s.log("got SIGTERM, ignoring it"));
await s.serve(() => 200);
s.log("ready");
