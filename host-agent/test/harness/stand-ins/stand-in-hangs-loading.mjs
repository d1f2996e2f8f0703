#!/usr/bin/env node
// Test stand-in (not llama-server): answers 503 (loading) forever, so the
// spec's readiness deadline must fail it and the supervisor must end it.
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-hangs-loading");
await s.serve(() => 503);
s.log("loading model (forever)");
