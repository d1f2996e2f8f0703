/**
 * Quoting an argv as a POSIX shell reads it, for text a person may copy into
 * a terminal (the agent's log banner; the model page's command preview).
 * Words made only of safe characters stay as they are; any other word is put
 * in single quotes, inside which a shell expands nothing ($(…), `…`, $VAR,
 * globs, spaces), with each `'` written as `'\''`. Zod-free, for any package.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One word, quoted when it needs to be ("" becomes ''). */
export function shellQuote(word: string): string {
  return word !== "" && SAFE.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A whole argv on one line, each word quoted as needed. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
