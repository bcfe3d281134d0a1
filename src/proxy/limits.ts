/**
 * Limits the CLI needs without loading the proxy: importing this module costs nothing, so
 * `meshctl` can validate `proxy run` flags and load the proxy itself only when it runs.
 */

/** Upper bound on a drain (POST /shutdown's drainSeconds, `proxy run --drain-seconds`). */
export const MAX_DRAIN_SECONDS = 300;
