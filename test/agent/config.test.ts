import { mkdir, mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentPaths,
  DEFAULT_LEASE_TTL_SECONDS,
  loadAgentConfig,
  runtimeConfig,
  saveAgentConfig,
  type AgentFileConfig,
} from '../../src/agent/config.js';
import { isMeshError } from '../../src/errors/index.js';
import { DEFAULT_DRAIN_SECONDS } from '../../src/proxy/limits.js';

const FILE: AgentFileConfig = {
  version: 1,
  nodeName: 'web-1',
  advertise: '127.0.12.1',
  registries: ['https://127.0.12.2:24600'],
  trustDomain: 'mesh.test',
  caFingerprint: 'ab:cd',
  socketPath: '/run/meshctl/agent.sock',
  servicesDir: '/etc/meshctl/services.d',
  joinedAt: '2026-12-02T05:00:00.000Z',
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-agent-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('agent.json and the runtime config are two types, built in one place', () => {
  it('what join writes is read back unchanged, with no default written into the file', async () => {
    const paths = agentPaths(join(dir, 'roundtrip'));
    await mkdir(paths.dataDir, { recursive: true });
    await saveAgentConfig(paths, FILE);
    expect((await loadAgentConfig(paths.dataDir)).config).toEqual(FILE);
    const written = JSON.parse(await readFile(paths.config, 'utf8')) as Record<string, unknown>;
    expect(written).not.toHaveProperty('leaseTtlSeconds');
    expect(written).not.toHaveProperty('drainSeconds');
  });

  it('the runtime config fills what the file leaves out with the defaults', () => {
    expect(runtimeConfig(FILE)).toEqual({
      nodeName: 'web-1',
      advertise: '127.0.12.1',
      registries: ['https://127.0.12.2:24600'],
      trustDomain: 'mesh.test',
      caFingerprint: 'ab:cd',
      socketPath: '/run/meshctl/agent.sock',
      servicesDir: '/etc/meshctl/services.d',
      leaseTtlSeconds: DEFAULT_LEASE_TTL_SECONDS,
      metricsBind: undefined,
      accessLogs: undefined,
      drainSeconds: DEFAULT_DRAIN_SECONDS,
      execChecks: false,
    });
  });

  it('the file wins over the defaults, and the start flags over the file', () => {
    const file: AgentFileConfig = {
      ...FILE,
      leaseTtlSeconds: 30,
      drainSeconds: 1,
      metricsBind: '127.0.12.1:24690',
      accessLogs: 'stdout',
    };
    const fromFile = runtimeConfig(file);
    expect(fromFile).toMatchObject({ leaseTtlSeconds: 30, drainSeconds: 1, metricsBind: '127.0.12.1:24690' });
    const flagged = runtimeConfig(file, {
      metricsBind: '127.0.12.1:24691',
      accessLogs: '/var/log/meshctl',
      enableExecChecks: true,
    });
    expect(flagged).toMatchObject({
      metricsBind: '127.0.12.1:24691',
      accessLogs: '/var/log/meshctl',
      execChecks: true,
    });
  });

  it('the runtime config does not share the file’s registry list', () => {
    const file = { ...FILE, registries: ['https://127.0.12.2:24600'] };
    runtimeConfig(file).registries.push('https://127.0.12.3:24600');
    expect(file.registries).toEqual(['https://127.0.12.2:24600']);
  });

  it('a runtime-only field written into agent.json is refused, naming the file and the key', async () => {
    const paths = agentPaths(join(dir, 'bad'));
    await mkdir(paths.dataDir, { recursive: true });
    await writeFile(paths.config, JSON.stringify({ ...FILE, execChecks: true }));
    const err = await loadAgentConfig(paths.dataDir).catch((e: unknown) => e);
    expect(isMeshError(err) && err.code).toBe('MESH_ERR_CONFIG');
    expect((err as Error).message).toContain(paths.config);
    expect((err as Error).message).toMatch(/execChecks/);
  });
});
