/**
 * A configuration value as an error about it may show it: what the variable held, so the person reading
 * "PORT must be a port number (1-65535)" sees it got "abc" (a typo, a unit, a shell that did not expand
 * a variable), without the error becoming a way to read secrets out of the environment. Used by the app's
 * env (src/server/env.ts) and the host agent's (env.ts).
 */

/** The most characters of a value shown (before quoting; "…" included). */
export const SHOWN_VALUE_MAX_CHARS = 80;

/** Variables whose values are secrets: tokens, keys, passwords. Their length is shown, never their text. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|(?:^|_)(?:API_?)?KEY(?:$|_|S$)/i;

/** True when `name` names a secret (SYNAPSE_API_TOKEN, *_KEY, *_PASSWORD, …). */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * How an error shows the value `value` of the variable `name`: quoted (JSON), at most SHOWN_VALUE_MAX_CHARS
 * characters, with a URL's password replaced by "***" ("postgres://app:***@db/synapse"); for a secret,
 * its length only ("5 characters; a secret, not shown").
 */
export function shownValue(name: string, value: string): string {
  if (isSecretName(name)) return `${value.length} character${value.length === 1 ? "" : "s"}; a secret, not shown`;
  const safe = value.replace(/(\/\/[^/?#@\s:]*:)[^/?#@\s]*@/g, "$1***@");
  return JSON.stringify(safe.length > SHOWN_VALUE_MAX_CHARS ? `${safe.slice(0, SHOWN_VALUE_MAX_CHARS - 1)}…` : safe);
}

/**
 * `message` with what the variable held added, as " (got …)" (shownValue), unless the message already says
 * it or the variable is not set (a value that is missing has nothing to show).
 */
export function withGotValue(message: string, name: string, value: string | undefined): string {
  if (value === undefined || /\(got /.test(message)) return message;
  return `${message} (got ${shownValue(name, value)})`;
}
