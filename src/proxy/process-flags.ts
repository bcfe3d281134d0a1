/**
 * V8 settings of a proxy process, set once by `meshctl proxy run` before the proxy starts (so
 * before any WebAssembly is compiled). The one WebAssembly module a proxy runs is undici's HTTP
 * parser (llhttp), compiled on the first L7 connection. By default V8 compiles it with Liftoff and
 * then again with TurboFan in background threads: a transient ≈ +35 MB of RSS at the first
 * request and ≈ +10 MB kept. Liftoff's code alone parses as fast here (a response head and a small
 * body per request), so the second compile buys nothing but memory (docs/BENCHMARKS.md "RSS").
 * Flags only for WebAssembly: JavaScript keeps all of V8's tiers. It also turns on the relay's
 * young-generation collections (./relay-gc.ts), which need V8's gc function.
 */
import { setFlagsFromString } from 'node:v8';
import { enableRelayGc } from './relay-gc.js';

export const PROXY_V8_FLAGS = ['--liftoff-only'] as const;

/**
 * Flags for node's command line when a proxy process is launched (the agent does,
 * src/agent/proxies/process.ts; the bench the same): V8 sizes its heap as the process starts, so
 * these cannot be set from inside. A young generation of 2 MB semi-spaces instead of Node's
 * 16 MB: the L7 outbound's peak RSS at 1,000 req/s 82-83 → 70-71 MB and at saturation 98-99 →
 * 80-81 MB, for scavenges 6× as often that cost ≈ 3-5 µs/req more at saturation (measured as
 * GC time; not resolvable in the total CPU per request on this box). 1 MB gave ≤ 3 MB more at
 * the rate and nothing at saturation for twice the scavenges (docs/BENCHMARKS.md "Young
 * generation").
 */
export const PROXY_NODE_FLAGS = ['--max-semi-space-size=2'] as const;

export function setProxyV8Flags(): void {
  for (const f of PROXY_V8_FLAGS) setFlagsFromString(f);
  enableRelayGc();
}
