/**
 * Limits the CLI needs without loading the proxy: importing this module costs nothing, so
 * `meshctl` can validate `proxy run` flags and load the proxy itself only when it runs.
 */

/** The drain on shutdown unless told otherwise (proxy.ts DEFAULT_DRAIN_MS, the agent's `drainSeconds`). */
export const DEFAULT_DRAIN_SECONDS = 30;
/** Upper bound on a drain (POST /shutdown's drainSeconds, `proxy run --drain-seconds`). */
export const MAX_DRAIN_SECONDS = 300;
