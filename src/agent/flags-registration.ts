/** Builds a service registration from `meshctl register service` flags; every value checked before anything is sent. */
import { MeshError } from '../errors/index.js';
import { serviceRegistrationSchema, type ServiceRegistration } from '../api/schemas.js';
import { parseCheckSpecs } from './checks/index.js';
import { parseUpstreamShorthand } from './definitions/index.js';

export interface RegisterFlags {
  id?: string;
  port: number;
  meshPort?: number;
  address?: string;
  tag: string[];
  meta: string[];
  weight?: number;
  protocol?: 'http' | 'tcp';
  check: string[];
  interval?: string;
  timeout?: string;
  successBeforePassing?: number;
  failuresBeforeCritical?: number;
  upstream: string[];
  proxy: boolean;
}

export function registrationFromFlags(name: string, f: RegisterFlags): ServiceRegistration {
  const meta: Record<string, string> = {};
  for (const kv of f.meta) {
    const i = kv.indexOf('=');
    if (i <= 0)
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid --meta '${kv}'`, { hint: 'Use --meta key=value.' });
    meta[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const checks = parseCheckSpecs(name, f.check, {
    ...(f.interval !== undefined ? { interval: f.interval } : {}),
    ...(f.timeout !== undefined ? { timeout: f.timeout } : {}),
    ...(f.successBeforePassing !== undefined ? { successBeforePassing: f.successBeforePassing } : {}),
    ...(f.failuresBeforeCritical !== undefined ? { failuresBeforeCritical: f.failuresBeforeCritical } : {}),
  });
  const upstreams = f.upstream.map((u) => {
    const r = parseUpstreamShorthand(u);
    if (typeof r === 'string')
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid --upstream: ${r}`, {
        hint: 'Use --upstream SERVICE:LOCALPORT, e.g. api:18000.',
      });
    return r;
  });
  const raw = {
    ...(f.id ? { id: f.id } : {}),
    name,
    port: f.port,
    ...(f.meshPort !== undefined ? { meshPort: f.meshPort } : {}),
    ...(f.address ? { address: f.address } : {}),
    tags: f.tag,
    meta,
    ...(f.weight !== undefined ? { weight: f.weight } : {}),
    ...(f.protocol ? { protocol: f.protocol } : {}),
    upstreams,
    checks,
    proxy: f.proxy,
  };
  const parsed = serviceRegistrationSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid service: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data;
}
