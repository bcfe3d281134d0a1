/**
 * The two small helpers every part wrote again: a promise that resolves after a while, and a
 * no-op listener. One copy each, here.
 */

/**
 * Resolves after `ms`. With `unref`, the pending timer does not keep the process alive (a
 * wait that only matters while something else runs: a drain, a retry inside a server).
 */
export function sleep(ms: number, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (opts.unref) t.unref();
  });
}

/** A no-op listener or catch handler, shared so no closure is made per use (e.g. per socket's 'error'). */
export function ignore(): void {}
