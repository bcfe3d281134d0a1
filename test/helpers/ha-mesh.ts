/** A registry of a mesh on etcd, made as an operator makes one: `meshctl init --server --store etcd`. */
import { expect } from 'vitest';
import { runCli } from './cli.js';

export interface EtcdRegistryInit {
  /** The etcd members' client URLs. */
  endpoints: readonly string[];
  dataDir: string;
  /** host:port the registry listens on. */
  bind: string;
  advertise: string;
  /** More flags: `--mesh-key FILE` for a registry joining the mesh, `--lease-ttl 5s`, … */
  extra?: readonly string[];
  env: Record<string, string>;
}

/** Runs the init (allow by default, nothing saved to the CLI's config) and returns its --json answer. */
export async function initEtcdRegistry<T>(o: EtcdRegistryInit): Promise<T> {
  const r = await runCli(
    [
      'init',
      '--server',
      '--store',
      'etcd',
      '--etcd-endpoints',
      o.endpoints.join(','),
      '--data-dir',
      o.dataDir,
      '--bind',
      o.bind,
      '--advertise',
      o.advertise,
      '--default-intention',
      'allow',
      '--json',
      '--no-save',
      ...(o.extra ?? []),
    ],
    o.env,
  );
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}
