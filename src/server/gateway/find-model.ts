/**
 * How a model is named from outside: by its registry name, else by its alias
 * (exact, case-sensitive, as llama-server compares). The gateway resolves a
 * request's `model` with it, the CLI its `<model>` argument. No imports: the
 * CLI runs this file under tsx from any folder.
 */

/**
 * The model called `name`, or undefined. `models`: anything with a name and an alias (null or "" for none:
 * the registry stores "" as well, and an empty alias names nothing).
 */
export function findModel<M extends { name: string; alias: string | null }>(models: readonly M[], name: string): M | undefined {
  return models.find((m) => m.name === name) ?? (name === "" ? undefined : models.find((m) => m.alias === name));
}
