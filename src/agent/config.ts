/**
 * The agent's configuration, in two types built in one place (as Consul's agent/config does):
 *
 * - `AgentFileConfig`: what `<data-dir>/agent.json` holds, written by `meshctl init --join`
 *   (and the demo), strict, with only what a user or the join chose;
 * - `AgentRuntimeConfig`: what the running agent uses, made by `runtimeConfig()` from the file,
 *   the `meshctl agent start` flags (which win) and the defaults. Nothing else in the agent
 *   reads the file or applies a default of its own.
 *
 * The layout of the data directory is in ./paths.ts.
 */
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { readConfigFile } from '../util/config-file.js';
import { addressSchema, nameSchema, TRUST_DOMAIN_RE } from '../api/schemas.js';
import { writeFileAtomic } from '../util/fs.js';
import { DEFAULT_DRAIN_SECONDS, MAX_DRAIN_SECONDS } from '../proxy/limits.js';
import { agentPaths, type AgentPaths } from './paths.js';

export { agentPaths, defaultSocketPath, type AgentPaths } from './paths.js';

/** The lease the registry gives a node when agent.json names none (join writes the registry's own). */
export const DEFAULT_LEASE_TTL_SECONDS = 15;

export const agentFileSchema = z
  .object({
    version: z.literal(1),
    nodeName: nameSchema,
    advertise: addressSchema,
    /** Registry URLs, tried in order; more than one for HA. */
    registries: z.array(z.string().url()).min(1),
    trustDomain: z.string().regex(TRUST_DOMAIN_RE),
    caFingerprint: z.string(),
    socketPath: z.string().min(1).max(100),
    servicesDir: z.string().min(1),
    leaseTtlSeconds: z.number().int().min(2).max(3600).optional(),
    /** Prometheus listener (ADDR:PORT), off unless set. */
    metricsBind: z.string().optional(),
    /** Access logs for every sidecar: a directory (one file per service) or "stdout". Off unless set. */
    accessLogs: z.string().optional(),
    /**
     * How long each sidecar lets in-flight requests finish when it stops (deregistration,
     * leave, SIGTERM); the agent waits this plus 5 s for it. Default DEFAULT_DRAIN_SECONDS.
     */
    drainSeconds: z.number().int().min(0).max(MAX_DRAIN_SECONDS).optional(),
    joinedAt: z.string(),
  })
  .strict();

/** agent.json as written. */
export type AgentFileConfig = z.infer<typeof agentFileSchema>;

/** What `meshctl agent start` may set over the file. */
export interface AgentStartFlags {
  /** Prometheus listener (ADDR:PORT); overrides the file's metricsBind. */
  metricsBind?: string;
  /** Access logs for every sidecar (a directory or "stdout"); overrides the file's accessLogs. */
  accessLogs?: string;
  /** Run exec checks from root-owned definition files (never from the socket); off by default. */
  enableExecChecks?: boolean;
}

/** The configuration the running agent uses: every value decided, none optional by accident. */
export interface AgentRuntimeConfig {
  nodeName: string;
  advertise: string;
  registries: string[];
  trustDomain: string;
  caFingerprint: string;
  socketPath: string;
  servicesDir: string;
  leaseTtlSeconds: number;
  /** Off when undefined. */
  metricsBind: string | undefined;
  /** Off when undefined. */
  accessLogs: string | undefined;
  drainSeconds: number;
  execChecks: boolean;
}

/** The file, then the flags over it, then the defaults for what neither says. */
export function runtimeConfig(file: AgentFileConfig, flags: AgentStartFlags = {}): AgentRuntimeConfig {
  return {
    nodeName: file.nodeName,
    advertise: file.advertise,
    registries: [...file.registries],
    trustDomain: file.trustDomain,
    caFingerprint: file.caFingerprint,
    socketPath: file.socketPath,
    servicesDir: file.servicesDir,
    leaseTtlSeconds: file.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
    metricsBind: flags.metricsBind ?? file.metricsBind,
    accessLogs: flags.accessLogs ?? file.accessLogs,
    drainSeconds: file.drainSeconds ?? DEFAULT_DRAIN_SECONDS,
    execChecks: flags.enableExecChecks === true,
  };
}

export async function loadAgentConfig(dataDir: string): Promise<{ config: AgentFileConfig; paths: AgentPaths }> {
  const paths = agentPaths(dataDir);
  const missing = () =>
    new MeshError('MESH_ERR_NOT_INITIALIZED', `this host has not joined a mesh (no ${paths.config})`, {
      hint: 'Run `meshctl init --join https://REGISTRY:7443 --token JOIN_TOKEN` first, or pass the --data-dir it used.',
    });
  const config = await readConfigFile(paths.config, agentFileSchema, missing);
  return { config, paths };
}

export async function saveAgentConfig(paths: AgentPaths, config: AgentFileConfig): Promise<void> {
  await writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + '\n', 0o600);
}
