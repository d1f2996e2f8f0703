import { describe, expect, it } from "vitest";
import { clearIssues, failureFromError, placeFailure } from "~/components/form/form-failure";
import { flagRowLabel, flagRowPath, newFlagRow } from "./flag-rows";

describe("the model form's extra-flag rows", () => {
  it("gives every new row its own key, never a number", () => {
    const keys = [newFlagRow("--seed"), newFlagRow("--seed"), newFlagRow("--metrics")].map((r) => r.key);
    expect(new Set(keys).size).toBe(3);
    for (const k of keys) expect(k).toMatch(/^flag\d+$/);
  });

  it("labels a row's issues by its flag, the name the server's messages begin with", () => {
    const rows = [newFlagRow("--temp", "0.5"), newFlagRow("--seed", "abc")];
    const seed = rows[1]!.key;
    const label = { text: "Extra flag --seed", names: "--seed" };
    expect(flagRowLabel(`extraFlags.${seed}.value`, rows)).toEqual(label);
    expect(flagRowLabel(`extraFlags.${seed}.flag`, rows)).toEqual(label);
    expect(flagRowLabel(`extraFlags.${seed}`, rows)).toEqual(label);
    expect(flagRowLabel("extraFlags.flag0.value", rows)).toBe("Extra flags");
    expect(flagRowLabel("extraFlags", rows)).toBeUndefined();
    expect(flagRowLabel("port", rows)).toBeUndefined();
  });

  it("a refused flag value stays beside its row, naming the flag, after a row above it is removed; editing the row clears it", () => {
    const rows = [newFlagRow("--temp", "0.5"), newFlagRow("--metrics"), newFlagRow("--seed", "abc"), newFlagRow("--top-k", "40")];
    const [temp, , seed, topK] = rows.map((r) => r.key);
    const err = Object.assign(new Error("extraFlags.2.value: --seed needs an integer"), { data: { issues: [{ path: "extraFlags.2.value", message: "--seed needs an integer" }] } });
    const failure = failureFromError(err, { extraFlags: rows.map((r) => r.key) });
    const layout = (now: typeof rows) => ({ shown: ["extraFlags"], rows: { extraFlags: now.map((r) => r.key) }, label: (p: string) => flagRowLabel(p, now) });

    // The flag said once: the row's label, then the server's message without its leading "--seed".
    const want = { [`extraFlags.${seed}.value`]: "Extra flag --seed: needs an integer" };
    expect(placeFailure(failure, layout(rows)).fields).toEqual(want);
    const afterRemove = rows.filter((r) => r.key !== temp);
    expect(placeFailure(failure, layout(afterRemove)).fields).toEqual(want);
    // Not beside the row now at index 2 (--top-k).
    expect(Object.keys(placeFailure(failure, layout(afterRemove)).fields).some((p) => p.includes(topK!))).toBe(false);
    // Removing the --temp row (no issue) keeps the failure; editing the --seed row clears it.
    expect(clearIssues(failure, flagRowPath(temp!))).toBe(failure);
    expect(clearIssues(failure, flagRowPath(seed!))).toBeNull();
  });
});
