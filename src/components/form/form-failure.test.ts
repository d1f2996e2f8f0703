import { describe, expect, it } from "vitest";
import { clearIssues, failureFromChecks, failureFromError, failureFromIssues, labelsByPrefix, placeFailure, wordIssues, type FormLayout } from "./form-failure";

/** A refused tRPC call as the client sees it: the message, and `data.issues` from the server's error formatter. */
function refused(message: string, issues: { path: string; message: string }[] | null) {
  return Object.assign(new Error(message), { data: { code: "CONFLICT", httpStatus: 409, issues } });
}

const HOST_LABELS = { name: "Name", sshHost: "SSH host", sshPort: "SSH port", linkKind: "Reached through", upstreamMode: "Gateway reaches its models", directAddress: "Direct address", modelPorts: "Model ports" };
const label = labelsByPrefix(HOST_LABELS);
const HOST_DIRECT: FormLayout = { shown: ["name", "linkKind", "sshHost", "sshPort", "upstreamMode", "directAddress"], label };
const HOST_TUNNEL: FormLayout = { shown: ["name", "linkKind", "sshHost", "sshPort", "upstreamMode", "modelPorts"], label };
const OUTSIDE = "models on host mac use ports outside 8090-8099: a (8085)";

describe("placeFailure", () => {
  it("puts an issue beside its field when the form shows that field, named by the field's label", () => {
    const failure = failureFromError(refused(`modelPorts: ${OUTSIDE}`, [{ path: "modelPorts", message: OUTSIDE }]));
    expect(placeFailure(failure, HOST_TUNNEL)).toEqual({
      summary: "Not saved: fix the fields marked below.",
      fields: { modelPorts: `Model ports: ${OUTSIDE}` },
      unplaced: [],
    });
  });

  it("lists an issue for a field hidden in the current mode by the field's label, not its path", () => {
    const failure = failureFromError(refused(`modelPorts: ${OUTSIDE}`, [{ path: "modelPorts", message: OUTSIDE }]));
    expect(placeFailure(failure, HOST_DIRECT)).toEqual({
      summary: "Not saved: fix what is listed here.",
      fields: {},
      unplaced: [{ path: "modelPorts", text: `Model ports: ${OUTSIDE}` }],
    });
  });

  it("splits issues between shown fields and the list, and says both; a path the form has no label for is named by the path", () => {
    const failure = failureFromError(
      refused("sshPort: …; id: …", [
        { path: "sshPort", message: "models on host mac are running: a (running); stop them first" },
        { path: "id", message: "no host with id h1" },
      ]),
    );
    expect(placeFailure(failure, HOST_DIRECT)).toEqual({
      summary: "Not saved: fix what is listed here and the fields marked below.",
      fields: { sshPort: "SSH port: models on host mac are running: a (running); stop them first" },
      unplaced: [{ path: "id", text: "id: no host with id h1" }],
    });
  });

  it("shows a refusal without issues by its whole message, after the form's lead", () => {
    const message = "host mac still has 2 model(s); delete or move them first";
    expect(placeFailure(failureFromError(refused(message, null)), HOST_TUNNEL)).toEqual({ summary: `Not saved: ${message}`, fields: {}, unplaced: [] });
    expect(placeFailure(failureFromError(new Error(message)), { ...HOST_TUNNEL, lead: "Not created" }).summary).toBe(`Not created: ${message}`);
  });

  it("lists an issue without a field (path \"\") by its message alone, never beside a field", () => {
    const failure = failureFromError(refused("conflicts with an existing model", [{ path: "", message: "conflicts with an existing model" }]));
    expect(placeFailure(failure, { shown: ["", "name"], label })).toEqual({
      summary: "Not saved: fix what is listed here.",
      fields: {},
      unplaced: [{ path: "", text: "conflicts with an existing model" }],
    });
  });

  it("keeps paths inside a shown field beside it, by their full path, named by the field's label", () => {
    const keys = { shown: ["name", "models"], label: labelsByPrefix({ name: "Name", models: "Models" }) };
    const failure = failureFromError(refused("bad model", [{ path: "models.1", message: "no model or alias named qwen" }]));
    expect(placeFailure(failure, keys).fields).toEqual({ "models.1": "Models: no model or alias named qwen" });
    // A field whose name only starts like a shown one is not inside it.
    expect(placeFailure(failure, { shown: ["model"], label: labelsByPrefix({ model: "Model" }) }).unplaced).toEqual([{ path: "models.1", text: "models.1: no model or alias named qwen" }]);
  });

  it("joins several issues of one field after one label", () => {
    const failure = failureFromError(refused("x", [{ path: "name", message: "is too long" }, { path: "name", message: "is taken" }]));
    expect(placeFailure(failure, HOST_TUNNEL).fields).toEqual({ name: "Name: is too long; is taken" });
  });

  it("words the form's own checks like the server's issues, and shows nothing without a failure", () => {
    expect(placeFailure(failureFromChecks({ sshPort: "must be a whole number" }), HOST_TUNNEL)).toEqual({ summary: "Not saved: fix the fields marked below.", fields: { sshPort: "SSH port: must be a whole number" }, unplaced: [] });
    expect(placeFailure(null, HOST_TUNNEL)).toEqual({ summary: null, fields: {}, unplaced: [] });
  });

  it("ignores issues that are not {path, message}", () => {
    const failure = failureFromError(Object.assign(new Error("refused"), { data: { issues: [{ path: 3, message: "x" }, "nope"] } }));
    expect(placeFailure(failure, HOST_TUNNEL)).toEqual({ summary: "Not saved: refused", fields: {}, unplaced: [] });
  });
});

describe("rows of a list, by key", () => {
  const flags = (rows: string[]): FormLayout => ({ shown: ["name", "extraFlags"], rows: { extraFlags: rows }, label: (p) => (p.startsWith("extraFlags.") ? `row ${p.split(".")[1]}` : undefined) });
  const seedRefused = refused("extraFlags.2.value: --seed needs an integer", [{ path: "extraFlags.2.value", message: "--seed needs an integer" }]);

  it("keeps a row's issue under the key of the row sent at that index", () => {
    const failure = failureFromError(seedRefused, { extraFlags: ["a", "b", "c", "d"] });
    expect(failure.errors).toEqual({ "extraFlags.c.value": "--seed needs an integer" });
    expect(placeFailure(failure, flags(["a", "b", "c", "d"])).fields).toEqual({ "extraFlags.c.value": "row c: --seed needs an integer" });
  });

  it("leaves the issue with its row when a row above it is removed or one is added, never with the row now at its index", () => {
    const failure = failureFromError(seedRefused, { extraFlags: ["a", "b", "c", "d"] });
    expect(placeFailure(failure, flags(["b", "c", "d"])).fields).toEqual({ "extraFlags.c.value": "row c: --seed needs an integer" });
    expect(placeFailure(failure, flags(["e", "a", "b", "c", "d"])).fields).toEqual({ "extraFlags.c.value": "row c: --seed needs an integer" });
  });

  it("lists an issue of a row no longer shown above the form instead of putting it beside another row", () => {
    const failure = failureFromError(seedRefused, { extraFlags: ["a", "b", "c", "d"] });
    expect(placeFailure(failure, flags(["a", "b", "d"]))).toEqual({ summary: "Not saved: fix what is listed here.", fields: {}, unplaced: [{ path: "extraFlags.c.value", text: "row c: --seed needs an integer" }] });
  });

  it("keys issues found before sending as a refusal of the same values is keyed", () => {
    const issues = [
      { path: "extraFlags.2.value", message: "--seed needs an integer" },
      { path: "ctxSize", message: "must be at most 8" },
      { path: "ctxSize", message: "must be a whole number" },
    ];
    const rows = { extraFlags: ["a", "b", "c", "d"] };
    expect(failureFromIssues(issues, rows)).toEqual({ message: null, errors: { "extraFlags.c.value": "--seed needs an integer", ctxSize: "must be at most 8; must be a whole number" } });
    expect(failureFromIssues(issues, rows).errors).toEqual(failureFromError(refused("x", issues), rows).errors);
  });

  it("keeps the list's own issue beside the list, and an index no row was sent at as it came", () => {
    const failure = failureFromError(
      refused("x", [
        { path: "extraFlags", message: "at most 32 extra flags" },
        { path: "extraFlags.7", message: "unknown key" },
      ]),
      { extraFlags: ["a"] },
    );
    expect(failure.errors).toEqual({ extraFlags: "at most 32 extra flags", "extraFlags.7": "unknown key" });
    expect(placeFailure(failure, flags(["a"]))).toMatchObject({ fields: { extraFlags: "extraFlags: at most 32 extra flags" }, unplaced: [{ path: "extraFlags.7", text: "row 7: unknown key" }] });
  });
});

describe("a label that names what its messages begin with", () => {
  const seedLabel: FormLayout["label"] = (p) => (p.startsWith("extraFlags.") ? { text: "Extra flag --seed", names: "--seed" } : undefined);
  const word = (message: string) => wordIssues({ message: null, errors: { "extraFlags.a.value": message } }, seedLabel)[0]?.text;

  it("says the name once: the label, then the message without its leading name", () => {
    expect(word("--seed needs an integer")).toBe("Extra flag --seed: needs an integer");
    expect(word("--seed: needs an integer")).toBe("Extra flag --seed: needs an integer");
    const failure = failureFromError(refused("x", [{ path: "extraFlags.0.value", message: "--seed needs an integer" }]), { extraFlags: ["a"] });
    expect(placeFailure(failure, { shown: ["extraFlags"], rows: { extraFlags: ["a"] }, label: seedLabel }).fields).toEqual({ "extraFlags.a.value": "Extra flag --seed: needs an integer" });
  });

  it("keeps any other message whole: one that does not begin with the name, a longer name, the name alone", () => {
    expect(word("must be at most 100 characters")).toBe("Extra flag --seed: must be at most 100 characters");
    expect(word("--seeds is not a flag")).toBe("Extra flag --seed: --seeds is not a flag");
    expect(word("--seed")).toBe("Extra flag --seed: --seed");
    expect(word("value: --seed needs an integer")).toBe("Extra flag --seed: value: --seed needs an integer");
  });
});

describe("clearIssues", () => {
  const failure = failureFromError(
    refused("x", [
      { path: "extraFlags.1.value", message: "--seed needs an integer" },
      { path: "extraFlags.1", message: "unknown key" },
      { path: "extraFlags.10.value", message: "--temp needs a number" },
    ]),
    { extraFlags: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"] },
  );

  it("drops the issues at a path and inside it, and nothing else (a row's key is not a prefix of another's)", () => {
    expect(clearIssues({ ...failure, errors: { "extraFlags.b.value": "x", "extraFlags.b": "y", "extraFlags.bb.value": "z", name: "w" } }, "extraFlags.b")?.errors).toEqual({ "extraFlags.bb.value": "z", name: "w" });
    expect(clearIssues(failure, "extraFlags.b")?.errors).toEqual({ "extraFlags.k.value": "--temp needs a number" });
  });

  it("leaves no failure once every issue is gone, keeps one without issues, and keeps the same failure when nothing matched", () => {
    expect(clearIssues(clearIssues(failure, "extraFlags.b"), "extraFlags.k")).toBeNull();
    const whole = failureFromError(new Error("host is unreachable"));
    expect(clearIssues(whole, "extraFlags.b")).toBe(whole);
    expect(clearIssues(failure, "name")).toBe(failure);
    expect(clearIssues(null, "name")).toBeNull();
  });
});

describe("labelsByPrefix", () => {
  it("names a path by the longest labelled path it is inside; undefined when none", () => {
    const labelOf = labelsByPrefix({ models: "Models", "models.0": "First model" });
    expect([labelOf("models"), labelOf("models.0"), labelOf("models.0.x"), labelOf("models.1"), labelOf("modelsX"), labelOf(""), labelOf("toString")]).toEqual(["Models", "First model", "First model", "Models", undefined, undefined, undefined]);
  });
});

describe("wordIssues", () => {
  it("words every issue by its label in the server's order, placing none; nothing for a failure without issues", () => {
    const failure = failureFromError(
      refused("…", [
        { path: "modelPorts", message: OUTSIDE },
        { path: "id", message: "no host with id h1" },
        { path: "", message: "conflicts with an existing host" },
      ]),
    );
    expect(wordIssues(failure, label)).toEqual([
      { path: "modelPorts", text: `Model ports: ${OUTSIDE}` },
      { path: "id", text: "id: no host with id h1" },
      { path: "", text: "conflicts with an existing host" },
    ]);
    expect(wordIssues(failureFromError(new Error("offline")), label)).toEqual([]);
  });
});
