import { describe, expect, it } from "vitest";
import { reachChanges, type HostReach } from "./host-reach";

const mac: HostReach = { name: "mac", linkKind: "ssh", sshHost: "mac.lan", sshPort: 2222, sshUser: "me", sshIdentityFile: "/keys/id_ed25519" };
const box: HostReach = { name: "box", linkKind: "local", sshHost: null, sshPort: 22, sshUser: null, sshIdentityFile: null };
const fields = (before: HostReach, after: Partial<HostReach>) => reachChanges(before, { ...before, ...after }).map((c) => c.field);

describe("reachChanges: the edits that move a host's link to another agent", () => {
  it("an ssh host: its address, port, user and key, each on its own; not its name", () => {
    expect(fields(mac, { sshHost: "studio.lan", sshPort: 22, sshUser: "other", sshIdentityFile: null })).toEqual(["sshHost", "sshPort", "sshUser", "sshIdentityFile"]);
    expect(fields(mac, { name: "studio" })).toEqual([]);
    expect(fields(mac, {})).toEqual([]);
  });

  it("a local host: its name (its agent's state folder is named after it); it has no ssh fields to change", () => {
    expect(fields(box, { name: "studio" })).toEqual(["name"]);
    expect(reachChanges(box, { ...box, name: "studio" })[0]).toMatchObject({ edit: "rename box to studio" });
    expect(fields(box, {})).toEqual([]);
  });

  it("a switch of link kind is the one change said, whatever ssh fields and name go with it", () => {
    expect(reachChanges(mac, { ...box, name: "mac2" })).toEqual([{ field: "linkKind", edit: "change linkKind from ssh to local", why: "their servers would keep running on the ssh host, unwatched" }]);
    expect(fields(box, { ...mac })).toEqual(["linkKind"]);
  });
});
