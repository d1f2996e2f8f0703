import { createHostAgent } from "../agent.ts";
import { freePort } from "../../test/harness/ports.ts";
import { agentOptions, specFor, testDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { describeHostLinkBehaviour } from "./link-behaviour.ts";
import { createLocalLink } from "./local.ts";
import { silentLinkLog } from "./types.ts";

describeHostLinkBehaviour("local", async () => {
  const dirs = await testDirs("synapse-link-local-");
  const options = agentOptions(dirs, llamaServerBin());
  const link = createLocalLink({ name: "local-test", agentConfig: options, log: silentLinkLog });
  return {
    link,
    modelRoot: dirs.modelRoot,
    writeModel: (name) => tinyModel(dirs.modelRoot, name),
    freePort,
    spec: (id, model, port) => specFor(id, model, port),
    async teardown() {
      await link.close();
      // A fresh agent re-adopts from the records and stops what is left.
      const agent = createHostAgent(options);
      try {
        await agent.call("stopAll", { graceMs: 2000 });
      } finally {
        agent.close();
        await dirs.cleanup();
      }
    },
  };
});
