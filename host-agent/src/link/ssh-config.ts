/**
 * The ssh link's configuration, validated up front: a bad value fails
 * `createSshLink` at once, with an error naming the field, instead of
 * surfacing later as a connection failure.
 */
// ssh2 is CommonJS; Node's ESM loader cannot see `utils` as a named export, so take the default.
import ssh2 from "ssh2";
import { z } from "zod";
import { FINGERPRINT_PATTERN } from "./host-key.ts";
import { formatIssues } from "../shared/error-text.ts";

export class LinkConfigError extends Error {
  readonly issues: { path: string; message: string }[];
  constructor(issues: { path: string; message: string }[], options?: { cause?: unknown }) {
    super(`invalid ssh link config: ${formatIssues(issues, "(config)")}`, options);
    this.name = "LinkConfigError";
    this.issues = issues;
  }
}

const ms = (min: number, max: number) => z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

export const sshLinkConfigSchema = z
  .object({
    /** The host's name in the registry; appears in every error. */
    name: z.string().min(1, "must not be empty").max(128),
    host: z.string().min(1, "must not be empty").max(255).regex(/^[A-Za-z0-9._:-]+$/, "must be a hostname or IP address"),
    port: z.number({ error: "must be a number" }).int("must be an integer").min(1, "must be between 1 and 65535").max(65535, "must be between 1 and 65535").default(22),
    username: z.string().min(1, "must not be empty").max(64).regex(/^[A-Za-z0-9._-]+$/, "must be a plain user name"),
    /** OpenSSH private key text (ed25519). */
    privateKey: z.union([z.string(), z.instanceof(Buffer)], { error: "must be the private key's text" }),
    passphrase: z.string().optional(),
    /** Pinned host key fingerprints (`SHA256:...`, as `ssh-keygen -lf` prints them). */
    hostKeyFingerprints: z.array(z.string().regex(FINGERPRINT_PATTERN, "must look like SHA256:<43 base64 characters>")).max(16).default([]),
    /** Host key algorithms to offer (e.g. the types of the pinned keys), most preferred first. */
    hostKeyAlgorithms: z.array(z.enum(["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"])).min(1).optional(),
    /** With no pin: accept the first key seen and report it through `onHostKeyTrusted`. */
    trustOnFirstUse: z.boolean().default(false),
    /** What the forced command wrapper expects; the wrapper ignores anything else. */
    command: z.literal("agent").default("agent"),
    connectTimeoutMs: ms(100, 120_000).default(10_000),
    callTimeoutMs: ms(1, 3_600_000).default(30_000),
    keepaliveIntervalMs: ms(0, 600_000).default(5_000),
    keepaliveCountMax: z.number().int().min(1).max(100).default(3),
    reconnect: z
      .object({
        initialDelayMs: ms(10, 600_000).default(250),
        maxDelayMs: ms(10, 3_600_000).default(30_000),
        /** +/- this fraction of randomness, so many links do not retry in lockstep. */
        jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .default({ initialDelayMs: 250, maxDelayMs: 30_000, jitter: 0.2 }),
    /** Bound on one incoming line (a `logs` reply can be large). */
    maxLineBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(64 * 1024 * 1024),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.hostKeyFingerprints.length === 0 && !c.trustOnFirstUse) {
      ctx.addIssue({
        code: "custom",
        path: ["hostKeyFingerprints"],
        message: "no host key is pinned; pin the host's key (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host) or set trustOnFirstUse: true",
      });
    }
    if (c.reconnect.maxDelayMs < c.reconnect.initialDelayMs) {
      ctx.addIssue({ code: "custom", path: ["reconnect", "maxDelayMs"], message: "must be at least reconnect.initialDelayMs" });
    }
    const parsed = ssh2.utils.parseKey(c.privateKey, c.passphrase);
    if (parsed instanceof Error) {
      ctx.addIssue({ code: "custom", path: ["privateKey"], message: `cannot be read: ${parsed.message}` });
    } else {
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!key || key.type !== "ssh-ed25519") ctx.addIssue({ code: "custom", path: ["privateKey"], message: `must be an ed25519 key (got ${key?.type ?? "nothing"})` });
      else if (!key.isPrivateKey()) ctx.addIssue({ code: "custom", path: ["privateKey"], message: "is a public key; give the private key" });
    }
  });

export type SshLinkConfigInput = z.input<typeof sshLinkConfigSchema>;
export type SshLinkConfig = z.output<typeof sshLinkConfigSchema>;

export function parseSshLinkConfig(input: unknown): SshLinkConfig {
  const r = sshLinkConfigSchema.safeParse(input);
  if (!r.success) {
    throw new LinkConfigError(
      r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
      { cause: r.error },
    );
  }
  return r.data;
}
