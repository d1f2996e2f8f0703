/**
 * Reads the repository's Docker files the way Docker does, for the subset
 * they use: docker-compose.yml (YAML subset + compose's `${VAR}` interpolation)
 * and the Dockerfile (instructions, stages, JSON-form commands). Used by
 * test/docker-contract.test.ts and by the production-mode test that runs the
 * app with the compose file's environment.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./app-build";
import { parseYamlSubset, type YamlValue } from "./yaml-subset";

// ------------------------------------------------------------------ compose

/**
 * Compose interpolation: `$$` → `$`, `${VAR}`, `${VAR:-default}` (unset or
 * empty), `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}`
 * (required). `vars` plays the shell environment plus .env.
 */
export function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, name?: string, op?: string, arg?: string, bare?: string) => {
    if (m === "$$") return "$";
    if (bare) return vars[bare] ?? "";
    const v = vars[name!];
    const unsetOrEmpty = v === undefined || v === "";
    switch (op) {
      case ":-":
        return unsetOrEmpty ? interpolate(arg ?? "", vars) : v!;
      case "-":
        return v === undefined ? interpolate(arg ?? "", vars) : v;
      case ":?":
        if (unsetOrEmpty) throw new Error(`compose: ${name} is required: ${arg}`);
        return v!;
      case "?":
        if (v === undefined) throw new Error(`compose: ${name} is required: ${arg}`);
        return v;
      default:
        return v ?? "";
    }
  });
}

/** Every variable a compose file reads from the environment (names in `${...}` and `$NAME`). */
export function composeVariables(source: string): string[] {
  const names = new Set<string>();
  for (const m of source.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)/g)) names.add((m[1] ?? m[2])!);
  return [...names].sort();
}

function interpolateTree(v: YamlValue, vars: Record<string, string | undefined>): YamlValue {
  if (typeof v === "string") return interpolate(v, vars);
  if (Array.isArray(v)) return v.map((x) => interpolateTree(x, vars));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateTree(x, vars)]));
  return v;
}

export interface ComposeService {
  raw: Record<string, YamlValue>;
  /** `environment` as a map (list form `KEY=value` or map form). */
  environment: Record<string, string>;
  ports: string[];
  volumes: string[];
  extraHosts: string[];
}

export interface ComposeFile {
  source: string;
  tree: Record<string, YamlValue>;
  services: Record<string, ComposeService>;
  namedVolumes: string[];
}

function strings(v: YamlValue | undefined, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Error(`compose: ${what} must be a list of strings`);
  return v as string[];
}

function environmentOf(v: YamlValue | undefined): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const item of v) {
      if (typeof item !== "string") throw new Error("compose: environment list items must be KEY=value strings");
      const eq = item.indexOf("=");
      if (eq === -1) throw new Error(`compose: environment item without '=': ${item} (a bare name passes the host's value; not used here)`);
      out[item.slice(0, eq)] = item.slice(eq + 1);
    }
    return out;
  }
  if (typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? "" : String(x)]));
  throw new Error("compose: environment must be a list or a mapping");
}

/** Reads docker-compose.yml, interpolated with `vars` (default: no variables set, so every default applies). */
export function loadCompose(vars: Record<string, string | undefined> = {}, file = path.join(REPO_ROOT, "docker-compose.yml")): ComposeFile {
  const source = readFileSync(file, "utf8");
  const parsed = parseYamlSubset(source);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("compose: the file must be a mapping");
  const tree = interpolateTree(parsed, vars) as Record<string, YamlValue>;
  const services: Record<string, ComposeService> = {};
  const rawServices = tree.services;
  if (!rawServices || typeof rawServices !== "object" || Array.isArray(rawServices)) throw new Error("compose: no services mapping");
  for (const [name, svc] of Object.entries(rawServices)) {
    if (!svc || typeof svc !== "object" || Array.isArray(svc)) throw new Error(`compose: service ${name} must be a mapping`);
    services[name] = {
      raw: svc,
      environment: environmentOf(svc.environment),
      ports: strings(svc.ports, `${name}.ports`),
      volumes: strings(svc.volumes, `${name}.volumes`),
      extraHosts: strings(svc.extra_hosts, `${name}.extra_hosts`),
    };
  }
  const vols = tree.volumes;
  const namedVolumes = vols && typeof vols === "object" && !Array.isArray(vols) ? Object.keys(vols) : [];
  return { source, tree, services, namedVolumes };
}

/** Compose durations ("75s", "1m30s", "500ms") in milliseconds. */
export function composeDurationMs(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/g;
  let total = 0;
  let consumed = "";
  for (const m of s.matchAll(re)) {
    const n = Number(m[1]);
    total += n * ({ h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 } as const)[m[2] as "h" | "m" | "s" | "ms" | "us"];
    consumed += m[0];
  }
  if (consumed !== s || s === "") throw new Error(`not a compose duration: ${s}`);
  return total;
}

/** A short-syntax volume `source:target[:mode]`. */
export function parseVolume(spec: string): { source: string; target: string; readOnly: boolean } {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3) throw new Error(`not a short-syntax volume: ${spec}`);
  return { source: parts[0]!, target: parts[1]!, readOnly: parts[2] === "ro" };
}

/** A short-syntax port `[ip:]host:container`. */
export function parsePort(spec: string): { ip: string | null; host: string; container: string } {
  const parts = spec.split(":");
  if (parts.length === 3) return { ip: parts[0]!, host: parts[1]!, container: parts[2]! };
  if (parts.length === 2) return { ip: null, host: parts[0]!, container: parts[1]! };
  throw new Error(`not a short-syntax port: ${spec}`);
}

// ------------------------------------------------------------------ Dockerfile

export interface DockerInstruction {
  line: number;
  /** Upper-case keyword. */
  op: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
}

export interface DockerStage {
  name: string | null;
  from: string;
  instructions: DockerInstruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: DockerStage[];
}

export function parseDockerfile(source: string): Dockerfile {
  const instructions: DockerInstruction[] = [];
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i]!;
    if (/^\s*#/.test(text) || text.trim() === "") continue;
    const start = i + 1;
    while (text.endsWith("\\") && i + 1 < lines.length) {
      text = text.slice(0, -1);
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      text += ` ${next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(text);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot read ${text}`);
    instructions.push({ line: start, op: m[1]!.toUpperCase(), args: m[2]!.trim().replace(/\s+/g, " ") });
  }
  const globalArgs: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ from: m[1]!, name: m[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== "ARG") throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before the first FROM`);
      const [k, v = ""] = ins.args.split("=", 2);
      globalArgs[k!] = v;
    } else stages[stages.length - 1]!.instructions.push(ins);
  }
  return { globalArgs, stages };
}

export function readDockerfile(file = path.join(REPO_ROOT, "Dockerfile")): Dockerfile {
  return parseDockerfile(readFileSync(file, "utf8"));
}

/** A JSON-form command (`["node", "x"]`); null for the shell form. */
export function jsonCommand(args: string): string[] | null {
  if (!args.startsWith("[")) return null;
  const v: unknown = JSON.parse(args);
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Error(`not a JSON string array: ${args}`);
  return v as string[];
}

/** `ENV A=1 B="two words"` (and the old `ENV A value` form) as a map. */
export function envPairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const sp = args.indexOf(" ");
    out[args.slice(0, sp)] = args.slice(sp + 1);
    return out;
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw.startsWith("'") ? raw.slice(1, -1) : raw;
  }
  return out;
}

/** `COPY [--from=x] [--chown=y] src... dest` */
export function copyArgs(args: string): { from: string | null; chown: string | null; sources: string[]; dest: string } {
  const words = args.split(" ");
  let from: string | null = null;
  let chown: string | null = null;
  while (words[0]?.startsWith("--")) {
    const w = words.shift()!;
    if (w.startsWith("--from=")) from = w.slice(7);
    else if (w.startsWith("--chown=")) chown = w.slice(8);
  }
  const dest = words.pop();
  if (!dest || words.length === 0) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { from, chown, sources: words, dest };
}
