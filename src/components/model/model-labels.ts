/**
 * The model form's fields by their labels, as the form shows them and as its refusals name them (a flag
 * row's: flag-rows.ts `flagRowLabel`). Plain data, so the agent's pointers to a field (extra-flags.ts
 * FLAGS_WITH_FIELDS) can be checked against it.
 */
import { SERVER_NUMBER_FIELDS } from "~/components/form/server-settings";
import { EXTRA_FLAGS_LABEL } from "./flag-rows";

/** Every server setting but the stop grace (global only) can be overridden per model. */
export const OVERRIDES = SERVER_NUMBER_FIELDS.filter((f): f is Exclude<(typeof SERVER_NUMBER_FIELDS)[number], { key: "stopGraceMs" }> => f.key !== "stopGraceMs");
export type OverrideKey = (typeof OVERRIDES)[number]["key"];

/** Each field's label on the model page. */
export const MODEL_FIELD_LABELS = {
  name: "Name",
  hostId: "Host",
  port: "Port",
  enabled: "Enabled (started by START ALL ENABLED)",
  filePath: "GGUF file",
  ...(Object.fromEntries(OVERRIDES.map((o) => [o.key, o.label])) as Record<OverrideKey, string>),
  flashAttn: "Flash attention",
  loadMode: "Load mode",
  alias: "Alias",
  loadPolicy: "Load policy",
  concurrency: "Concurrency",
  serverApiKeyOff: "No server key (for clients that call the server itself)",
  startPriority: "Start priority",
  cacheRamMiB: "Prompt cache (MiB)",
  queueLimit: "Queue",
  extraFlags: EXTRA_FLAGS_LABEL,
} as const;
