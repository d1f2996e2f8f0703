import { describe, expect, it } from "vitest";
import { failureFromChecks, failureFromError, placeFailure } from "./form-failure";

/** A refused tRPC call as the client sees it: the message, and `data.issues` from the server's error formatter. */
function refused(message: string, issues: { path: string; message: string }[] | null) {
  return Object.assign(new Error(message), { data: { code: "CONFLICT", httpStatus: 409, issues } });
}

const HOST_DIRECT = ["name", "linkKind", "sshHost", "sshPort", "upstreamMode", "directAddress"];
const HOST_TUNNEL = ["name", "linkKind", "sshHost", "sshPort", "upstreamMode", "modelPorts"];

describe("placeFailure", () => {
  it("puts an issue beside its field when the form shows that field", () => {
    const failure = failureFromError(refused("modelPorts: outside", [{ path: "modelPorts", message: "models use ports outside 8090-8099" }]));
    expect(placeFailure(failure, HOST_TUNNEL)).toEqual({
      summary: "Not saved: fix the fields marked below.",
      fields: { modelPorts: "models use ports outside 8090-8099" },
      unplaced: [],
    });
  });

  it("lists an issue for a field hidden in the current mode, by the field's name, instead of pointing at nothing", () => {
    const failure = failureFromError(refused("modelPorts: outside", [{ path: "modelPorts", message: "models use ports outside 8090-8099" }]));
    expect(placeFailure(failure, HOST_DIRECT)).toEqual({
      summary: "Not saved: fix what is listed here.",
      fields: {},
      unplaced: [{ path: "modelPorts", message: "models use ports outside 8090-8099" }],
    });
  });

  it("splits issues between shown fields and the list, and says both", () => {
    const failure = failureFromError(
      refused("sshPort: …; id: …", [
        { path: "sshPort", message: "models on host mac are running: a (running); stop them first" },
        { path: "id", message: "no host with id h1" },
      ]),
    );
    expect(placeFailure(failure, HOST_DIRECT)).toEqual({
      summary: "Not saved: fix what is listed here and the fields marked below.",
      fields: { sshPort: "models on host mac are running: a (running); stop them first" },
      unplaced: [{ path: "id", message: "no host with id h1" }],
    });
  });

  it("shows a refusal without issues by its whole message", () => {
    const message = "host mac still has 2 model(s); delete or move them first";
    expect(placeFailure(failureFromError(refused(message, null)), HOST_TUNNEL)).toEqual({ summary: `Not saved: ${message}`, fields: {}, unplaced: [] });
    expect(placeFailure(failureFromError(new Error(message)), HOST_TUNNEL, "Not created").summary).toBe(`Not created: ${message}`);
  });

  it("lists an issue without a field (path \"\") by its message, never beside a field", () => {
    const failure = failureFromError(refused("conflicts with an existing model", [{ path: "", message: "conflicts with an existing model" }]));
    expect(placeFailure(failure, ["", "name"])).toEqual({
      summary: "Not saved: fix what is listed here.",
      fields: {},
      unplaced: [{ path: "", message: "conflicts with an existing model" }],
    });
  });

  it("keeps paths inside a shown field beside it, by their full path", () => {
    const failure = failureFromError(refused("bad flag", [{ path: "extraFlags.0.value", message: "must be a number" }]));
    expect(placeFailure(failure, ["name", "extraFlags"]).fields).toEqual({ "extraFlags.0.value": "must be a number" });
    // A field whose name only starts like a shown one is not inside it.
    expect(placeFailure(failure, ["extraFlag"]).unplaced).toEqual([{ path: "extraFlags.0.value", message: "must be a number" }]);
  });

  it("joins several issues of one field", () => {
    const failure = failureFromError(refused("x", [{ path: "name", message: "is too long" }, { path: "name", message: "is taken" }]));
    expect(placeFailure(failure, ["name"]).fields).toEqual({ name: "is too long; is taken" });
  });

  it("words the form's own checks like the server's issues, and shows nothing without a failure", () => {
    expect(placeFailure(failureFromChecks({ sshPort: "must be a whole number" }), HOST_TUNNEL)).toEqual({ summary: "Not saved: fix the fields marked below.", fields: { sshPort: "must be a whole number" }, unplaced: [] });
    expect(placeFailure(null, HOST_TUNNEL)).toEqual({ summary: null, fields: {}, unplaced: [] });
  });

  it("ignores issues that are not {path, message}", () => {
    const failure = failureFromError(Object.assign(new Error("refused"), { data: { issues: [{ path: 3, message: "x" }, "nope"] } }));
    expect(placeFailure(failure, HOST_TUNNEL)).toEqual({ summary: "Not saved: refused", fields: {}, unplaced: [] });
  });
});
