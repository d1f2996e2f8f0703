/**
 * `npm run registry:import` as a child process against a temp database: the
 * seed folder as it is, a re-import, invalid entries (exit 2), bad arguments
 * (exit 1), and the CLI writing while this process writes the same file.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "~/server/db/client";
import { createModel, ensureDefaultHost } from "~/server/services/registry";
import { parseEnv } from "~/server/env";
import { tempDir } from "../../../test/harness/temp";

const repo = path.resolve(import.meta.dirname, "../../..");
const tsx = path.join(repo, "node_modules", ".bin", "tsx");
const seed = path.join(repo, "test", "fixtures", "seed");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function freshUrl(): { url: string; file: string; dir: string } {
  const t = tempDir("synapse-cli-");
  cleanups.push(t.cleanup);
  const file = path.join(t.dir, "db", "synapse.db");
  return { url: `file:${file}`, file, dir: t.dir };
}

function run(args: string[], databaseUrl: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, DATABASE_URL: databaseUrl, USE_EXTERNAL_SERVERS: "false", PORT: "3000", PRAXIS_MODEL_PATH: "", HOSTNAME: "127.0.0.1" };
  return new Promise((resolve) => {
    execFile(tsx, ["src/server/cli/registry-import.ts", ...args], { cwd: repo, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("registry:import", () => {
  it("imports the seed folder as it is (backend/data/), then a re-import changes nothing", async () => {
    const { url, file } = freshUrl();
    const first = await run([seed], url);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("importing into host local");
    expect(first.stdout).toMatch(/created +deepseek_r1_0528_8p0b_q4km_powerful +port 8080, enabled/);
    expect(first.stdout).toContain("5 created, 0 updated, 0 unchanged, 0 invalid; settings updated");

    const db = openDatabase(file, { migrate: false });
    try {
      const rows = await db.model.findMany({ select: { name: true, updatedAt: true, host: { select: { name: true } } }, orderBy: { name: "asc" } });
      expect(rows).toHaveLength(5);
      expect(new Set(rows.map((r) => r.host.name))).toEqual(new Set(["local"]));
      const second = await run([path.join(seed, "backend", "data", "model_registry.json"), path.join(seed, "backend", "data", "runtime_settings.json")], url);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain("0 created, 0 updated, 5 unchanged, 0 invalid; settings unchanged");
      expect(await db.model.findMany({ select: { name: true, updatedAt: true, host: { select: { name: true } } }, orderBy: { name: "asc" } })).toEqual(rows);
    } finally {
      await db.$disconnect();
    }
  });

  it("reports invalid entries one by one, imports the rest, and exits 2", async () => {
    const { url } = freshUrl();
    const r = await run([path.join(seed, "invalid", "model_registry.json")], url);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/invalid +privileged_port_model +port: must be between 1024 and 65535/);
    expect(r.stdout).toMatch(/invalid +relative_path_model +file_path: must be an absolute path/);
    expect(r.stdout).toMatch(/invalid +bad_gpu_layers +n_gpu_layers: .*; ctx_size: /);
    expect(r.stdout).toMatch(/invalid +duplicate_port +port: 8090 is also given to qwen3_4p0b_q4km_fast/);
    expect(r.stdout).toContain("2 created, 0 updated, 0 unchanged, 4 invalid; settings absent");
  });

  it.each([
    ["no arguments", [], /give model_registry\.json, runtime_settings\.json or a folder/],
    ["a missing file", ["/nonexistent/model_registry.json"], /\/nonexistent\/model_registry\.json: cannot be read \(ENOENT\)/],
    ["a folder without the files", ["src"], /src: no model_registry\.json or runtime_settings\.json in it/],
    ["an unknown option", ["--force", seed], /unknown option --force/],
    ["an unknown host", ["--host", "nowhere", seed], /no host named nowhere; registered: none/],
  ])("exits 1 on %s with a clear message, creating no models", async (_n, args, message) => {
    const { url, file } = freshUrl();
    const r = await run(args, url);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
    if (fs.existsSync(file)) {
      const db = openDatabase(file, { migrate: false });
      expect(await db.model.count()).toBe(0);
      await db.$disconnect();
    }
  });

  it("exits 1 when a file is not JSON or not the seed's shape, naming the file", async () => {
    const { url, dir } = freshUrl();
    const broken = path.join(dir, "model_registry.json");
    fs.writeFileSync(broken, "{ \"models\": ");
    const r = await run([broken], url);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nothing imported: registry: model_registry\.json is not valid JSON/);
    const odd = path.join(dir, "export.json");
    fs.writeFileSync(odd, JSON.stringify({ hello: "world" }));
    const r2 = await run([odd], url);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/export\.json: neither a model_registry\.json/);
  });

  it("imports a renamed registry saved with a byte-order mark, and reports a model id given twice", async () => {
    const { url, dir } = freshUrl();
    const file = path.join(dir, "registry-export.json");
    const text = fs.readFileSync(path.join(seed, "backend", "data", "model_registry.json"), "utf8");
    const entry = '"again": {"file_path": "/models/again.gguf", "port": 9100}';
    fs.writeFileSync(file, `\uFEFF${text.replace('"models": {', `"models": {\n    ${entry},\n    ${entry},`)}`);
    const r = await run([file], url);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/invalid +again +model_id: again appears 2 times in model_registry\.json \(lines \d+ and \d+\)/);
    expect(r.stdout).toContain("5 created, 0 updated, 0 unchanged, 1 invalid");
  });

  it("imports while this process writes the same database: both sides' writes land, no SQLITE_BUSY", async () => {
    const { url, file } = freshUrl();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = openDatabase(file);
    try {
      const host = await ensureDefaultHost(db, parseEnv({}));
      const cli = run([seed], url);
      const ours = Promise.all(
        Array.from({ length: 50 }, (_, i) => createModel(db, { name: `app-${i}`, hostId: host.id, filePath: `/srv/app-${i}.gguf`, port: 30_000 + i }, { appPort: 3000 })),
      );
      const [r, created] = await Promise.all([cli, ours]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(created).toHaveLength(50);
      expect(await db.model.count()).toBe(55);
    } finally {
      await db.$disconnect();
    }
  });
});
