#!/usr/bin/env node
// Launcher for the host agent CLI: registers tsx's loader so the TypeScript
// sources run as they are (no build step on the host), then runs src/cli.ts.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
