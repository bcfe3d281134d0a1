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

export function setProxyV8Flags(): void {
  for (const f of PROXY_V8_FLAGS) setFlagsFromString(f);
  enableRelayGc();
}
