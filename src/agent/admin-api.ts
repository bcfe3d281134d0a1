/**
 * What the agent's local admin API serves, as an interface: the admin server is built from it
 * (so its routes are tested against any implementation) and the CLI's client reads its shapes.
 */
import type { CheckStatus, ServiceRegistration } from '../api/schemas.js';
import type { CheckStateView } from './checks/index.js';
import type { ProxyStats } from './proxies/manager.js';
import type { SidecarResilience } from './metrics/reporter.js';
import type { ServiceSource } from './state.js';

export interface ServiceView {
  id: string;
  name: string;
  port: number;
  address?: string;
  protocol: string;
  tags: string[];
  weight: number;
  upstreams: ServiceRegistration['upstreams'];
  source: ServiceSource;
  status: CheckStatus;
  checks: CheckStateView[];
  /** Why this service's sidecar cannot serve it (e.g. an upstream port it cannot bind); absent when it can. */
  sidecarProblem?: string;
  /** Its sidecar drains (was told to stop): withdrawn from callers while requests in flight finish. */
  draining?: true;
  /**
   * What its sidecar's resilience did towards each upstream over the last window (retries,
   * timeouts, circuit-open, ejections; `ejected`: endpoints out now), zeros included; absent
   * for a service without a sidecar.
   */
  resilience?: SidecarResilience;
}

export interface DefinitionProblem {
  file: string;
  message: string;
  line?: number;
  column?: number;
  /** Ids still registered from this file (its last good version); empty for a file never good. */
  registered?: string[];
}

export interface RegisterOptions {
  /** false: refuse to change a CLI registration with this id (`register -f` without --replace). */
  replace?: boolean;
  /** Check everything, change nothing (a file's services are all checked before any is registered). */
  dryRun?: boolean;
}

export interface RegistrationResult {
  id: string;
  /** Whether the registry has it already (false: the anti-entropy loop will bring it). */
  synced: boolean;
}

export interface RegistryRead {
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface AgentAdminApi {
  self(): Record<string, unknown>;
  nodeCertificateExpiry(): Promise<string>;
  services(): ServiceView[];
  definitionProblems(): DefinitionProblem[];
  /** `replace: false`: refuse to change a CLI registration that already has this id (`register -f` without --replace). */
  register(input: unknown, opts?: RegisterOptions): Promise<RegistrationResult>;
  deregister(id: string): Promise<RegistrationResult>;
  ttlUpdate(checkId: string, status: CheckStatus, note: string): CheckStateView;
  /** A read from the registry with this node's identity. */
  registryGet(path: string, query: Record<string, string>): Promise<RegistryRead>;
  proxyStats(): Promise<ProxyStats[]>;
  /** A sidecar (process `pid`) was told to stop: withdraw its instance; resolves once the registry has it. */
  sidecarDraining(serviceId: string, pid: number): Promise<{ withdrawn: true }>;
  /** Deregisters everything of this host; the agent keeps running until `requestStop`. */
  leave(): Promise<void>;
  /** Asks the agent's owner to stop it (after `leave` has been answered). */
  requestStop(): void;
  reload(): Promise<void>;
}
