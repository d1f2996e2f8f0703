/**
 * A deadline on a promise the caller cannot cancel (an agent call through a
 * host link, opening a link): rejects with "WHAT took more than MS ms" when
 * `ms` passes first. The work itself goes on; its late result is dropped.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
