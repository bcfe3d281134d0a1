/**
 * Traffic figures of one scope — the inbound side, one upstream, or one endpoint of an
 * upstream — in the shape of the metrics contract (src/api/metrics.ts).
 *
 * What is counted where, so that the registry's success rate (requests minus 5xx minus mesh
 * errors) holds:
 *   requests    every request (HTTP) or connection (TCP), whoever answered it;
 *   responses   answers that came from the service, by status class;
 *   meshErrors  answers or refusals the mesh produced itself (ours or the peer proxy's), by
 *               the reason's first word — never also counted under `responses`;
 *   latency     one value per finished request (or closed TCP connection), in µs.
 *
 * Recording is a few number increments and one histogram write: no allocation, no map
 * lookup on the success path. Histograms are made on first use, so an idle endpoint costs
 * nothing, and encoding for a scrape is cached while nothing new was recorded.
 */
// Two modules of hdr-histogram-js rather than its index, which also loads log readers and
// writers the proxy never uses: about 6 MB less resident memory in every proxy process.
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js/dist/encoding.js';
import { build } from 'hdr-histogram-js/dist/HistogramBuilder.js';
import type { TrafficCounters } from '../api/metrics.js';
import type { MeshErrorKind } from '../errors/reasons.js';
import { ConnectionCounter, ReasonCounter, type ResponseClassJson } from './stats.js';

type Histogram = ReturnType<typeof build>;

/** One hour in µs: the top of the histogram range; longer requests are recorded as one hour. */
export const MAX_LATENCY_US = 3_600_000_000;

/**
 * Two significant digits over 1 µs .. 1 h: 3,328 buckets. As 32-bit counts that is 13 KB per
 * histogram — fine for the inbound side and each upstream. An upstream with many endpoints
 * gives its endpoints packed histograms (about 1–3 KB, a few times slower to record).
 */
function buildHistogram(compact: boolean): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_LATENCY_US,
    numberOfSignificantValueDigits: 2,
    bitBucketSize: compact ? 'packed' : 32,
  });
}

/** Reasons per counter map in the metrics (the registry takes at most 64). */
const MAX_REASONS = 32;

function classIndex(status: number): number {
  const c = (status / 100) | 0;
  return c >= 1 && c <= 5 ? c : 0;
}

function classesJson(a: readonly number[], b?: readonly number[]): ResponseClassJson {
  const out: ResponseClassJson = {};
  for (let c = 1; c <= 5; c++) {
    const n = a[c]! + (b ? b[c]! : 0);
    if (n > 0) out[`${c}xx` as keyof ResponseClassJson] = n;
  }
  return out;
}

export class Traffic {
  requests = 0;
  /** Mesh-made answers and refusals by kind (the reason's first word). */
  readonly meshErrors = new ReasonCounter(MAX_REASONS);
  readonly connections: ConnectionCounter;
  /** Service answers by class; index = status / 100, 0 unused. */
  readonly #classes = [0, 0, 0, 0, 0, 0];
  /** Status classes of the mesh's own answers, only for `GET /stats`, which always showed them. */
  readonly #meshClasses = [0, 0, 0, 0, 0, 0];
  readonly #compact: boolean;
  #latency: Histogram | undefined;
  #encoded = '';
  #encodedCount = 0;

  constructor(connections: ConnectionCounter = new ConnectionCounter(), opts: { compact?: boolean } = {}) {
    this.connections = connections;
    this.#compact = opts.compact ?? false;
  }

  /** An answer from the service. */
  response(status: number): void {
    this.#classes[classIndex(status)]! += 1;
  }

  /** The mesh answered or refused by itself; `status` is 0 when there was no HTTP answer (TCP). */
  meshError(kind: MeshErrorKind, status = 0): void {
    this.meshErrors.add(kind);
    if (status > 0) this.#meshClasses[classIndex(status)]! += 1;
  }

  /** One finished request's (or TCP connection's) duration, from two performance.now() readings. */
  latencyMs(ms: number): void {
    let us = Math.round(ms * 1000);
    if (!(us >= 0)) us = 0;
    else if (us > MAX_LATENCY_US) us = MAX_LATENCY_US;
    (this.#latency ??= buildHistogram(this.#compact)).recordValue(us);
  }

  /** Values recorded in the latency histogram. */
  get latencyCount(): number {
    return this.#latency?.totalCount ?? 0;
  }

  /** Service answers by class (the contract's `responses`). */
  responses(): ResponseClassJson {
    return classesJson(this.#classes);
  }

  /** Every answer by class, the mesh's own included (what `GET /stats` shows). */
  allResponses(): ResponseClassJson {
    return classesJson(this.#classes, this.#meshClasses);
  }

  /** The histogram, base64 as the contract carries it; '' before the first value. */
  encodedLatency(): string {
    const h = this.#latency;
    if (!h || h.totalCount === 0) return '';
    if (h.totalCount !== this.#encodedCount) {
      this.#encoded = encodeIntoCompressedBase64(h);
      this.#encodedCount = h.totalCount;
    }
    return this.#encoded;
  }

  /**
   * The contract's counters. `flipBytes` swaps the connection byte counts, for scopes whose
   * sockets face the other way than the direction the contract names (see Outbound).
   */
  toMetrics(flipBytes = false): TrafficCounters {
    const c = this.connections;
    const bytes = c.bytes();
    return {
      requests: this.requests,
      responses: this.responses(),
      meshErrors: this.meshErrors.toJSON(),
      activeConnections: c.active,
      totalConnections: c.total,
      bytesIn: flipBytes ? bytes.out : bytes.in,
      bytesOut: flipBytes ? bytes.in : bytes.out,
      latency: this.encodedLatency(),
    };
  }
}
