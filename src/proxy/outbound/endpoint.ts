/**
 * One instance of an upstream as the outbound side sees it: where it is, what it weighs,
 * what is in flight to it, its counters, and (L7) its keep-alive connection pool.
 */
import type { TLSSocket } from 'node:tls';
import { ConnectionCounter, ReasonCounter } from '../stats.js';
import type { SnapshotEndpoint } from '../snapshot.js';
import { Traffic } from '../traffic.js';
import type { Balanceable } from './balancers.js';
import type { DialTarget } from './dial.js';
import type { EndpointClient } from './http/client.js';
import { newOutlierState, type OutlierState } from './http/outlier.js';

export class Endpoint implements Balanceable, DialTarget {
  readonly id: string;
  readonly node: string;
  /** As dialled: brackets of an IPv6 literal removed. */
  readonly host: string;
  readonly port: number;
  weight: number;
  inFlight = 0;
  /** Mesh (TLS) connections to this endpoint. */
  readonly connections = new ConnectionCounter();
  /** Attempts sent to this endpoint and how they ended (connect failures count as mesh errors here). */
  readonly traffic: Traffic;
  readonly connectFailures = new ReasonCounter();
  /** Mesh connections that resumed an earlier verified TLS session (tls-sessions.ts) instead of a full handshake. */
  tlsResumed = 0;
  /** Outlier ejection's view of it (L7): failures in a row, ejected until when. */
  readonly outlier: OutlierState = newOutlierState();
  /** L7 only: the keep-alive pool; replaced on certificate rotation. */
  client: EndpointClient | undefined;

  /** `compact`: a packed latency histogram, for upstreams with many endpoints. */
  constructor(e: SnapshotEndpoint, compact = false) {
    this.id = e.id;
    this.node = e.node;
    this.host = e.address.replace(/^\[(.*)\]$/, '$1');
    this.port = e.port;
    this.weight = e.weight;
    this.traffic = new Traffic(this.connections, { compact });
  }

  connected(socket: TLSSocket, resumed: boolean): void {
    if (resumed) this.tlsResumed += 1;
    this.connections.track(socket);
  }

  failed(reason: string): void {
    this.connectFailures.add(reason);
  }

  /** Same place: a pool (and its counters) can be kept across snapshots. */
  sameTarget(e: SnapshotEndpoint): boolean {
    return this.id === e.id && this.port === e.port && this.host === e.address.replace(/^\[(.*)\]$/, '$1');
  }

  toJSON(): Record<string, unknown> {
    return {
      node: this.node,
      address: this.host,
      port: this.port,
      weight: this.weight,
      inFlight: this.inFlight,
      ejected: this.outlier.ejectedUntil > 0,
      ejections: this.outlier.ejections,
      requests: this.traffic.requests,
      responses: this.traffic.allResponses(),
      connections: this.connections.connections(),
      bytes: this.connections.bytes(),
      connectFailures: this.connectFailures.toJSON(),
      tlsResumed: this.tlsResumed,
    };
  }
}
