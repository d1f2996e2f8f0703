/** The registry service: hosts, models, global defaults, discovery, seed import, and specs for the agent. */
export { toHostPath, toRegistryPath, mappingOf, type HostPathMapping } from "./paths";
export { resolveSpec, parseExtraFlagsColumn, type SpecModel, type SpecHost, type SpecSettings } from "./spec";
export * from "./schemas";
export { writeTransaction, asServiceError, uniqueViolationFields, type Tx, type DbOrTx } from "./tx";
export {
  listHosts,
  getHost,
  upsertHost,
  updateHost,
  deleteHost,
  ensureDefaultHost,
  defaultHostData,
  resolveHostId,
  hostSelect,
  LOCAL_HOST_NAME,
  type HostView,
  type HostListItem,
  type DefaultHostEnv,
} from "./hosts";
export {
  listModels,
  getModel,
  createModel,
  updateModel,
  setModelEnabled,
  deleteModel,
  freePort,
  toModelView,
  modelSelect,
  ACTIVE_STATES,
  type ModelView,
  type RegistryDeps,
  type SavedModel,
} from "./models";
export { agentPathChecker, type PathCheck, type PathChecker } from "./path-check";
export { agentLogMover, type LogMove, type LogMover } from "./log-move";
export { agentPortHolder, hostPortHolder, localPortHolder } from "./port-holder";
export { getSettings, updateSettings, SETTINGS_ID, type SettingsView } from "./settings";
export { addDiscoveredModels, nameCandidates, uniqueName, type DiscoveryReport } from "./discover";
export { importSeed, type ImportReport, type ImportFiles } from "./import-seed";
