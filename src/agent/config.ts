/**
 * The agent's configuration (`<data-dir>/agent.json`), written by `meshctl init --join` and
 * read by `meshctl agent start` (the layout of its data directory is in ./paths.ts).
 */
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { readConfigFile } from '../util/config-file.js';
import { addressSchema, nameSchema, TRUST_DOMAIN_RE } from '../api/schemas.js';
import { writeFileAtomic } from '../util/fs.js';
import { MAX_DRAIN_SECONDS } from '../proxy/limits.js';
import { agentPaths, type AgentPaths } from './paths.js';

export { agentPaths, defaultSocketPath, type AgentPaths } from './paths.js';

export const agentConfigSchema = z
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
    leaseTtlSeconds: z.number().int().min(2).max(3600).default(15),
    /** Prometheus listener (ADDR:PORT), off unless set. */
    metricsBind: z.string().optional(),
    /** Access logs for every sidecar: a directory (one file per service) or "stdout". Off unless set. */
    accessLogs: z.string().optional(),
    /**
     * How long each sidecar lets in-flight requests finish when it stops (deregistration,
     * leave, SIGTERM); the agent waits this plus 5 s for it. Default 30 (DEFAULT_DRAIN_SECONDS).
     */
    drainSeconds: z.number().int().min(0).max(MAX_DRAIN_SECONDS).optional(),
    joinedAt: z.string(),
  })
  .strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export async function loadAgentConfig(dataDir: string): Promise<{ config: AgentConfig; paths: AgentPaths }> {
  const paths = agentPaths(dataDir);
  const missing = () =>
    new MeshError('MESH_ERR_NOT_INITIALIZED', `this host has not joined a mesh (no ${paths.config})`, {
      hint: 'Run `meshctl init --join https://REGISTRY:7443 --token JOIN_TOKEN` first, or pass the --data-dir it used.',
    });
  const config = await readConfigFile(paths.config, agentConfigSchema, missing);
  return { config, paths };
}

export async function saveAgentConfig(paths: AgentPaths, config: AgentConfig): Promise<void> {
  await writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + '\n', 0o600);
}
