/**
 * Which node may be which service (Consul's `service:write`, Kuma's service-bound dataplane
 * tokens). A node may register, and get leaves for, only the service names its authorization
 * names: exact names, patterns such as `batch-*`, or every name when `anyService` was asked
 * for by name. The authorization comes with the join token and the admin changes it per
 * node; nobody else can (a node's own writes never touch it).
 */
import { MeshError } from '../errors/index.js';
import type { NodeRecord } from '../api/schemas.js';
import { REGISTRY_SERVICE } from './catalog.js';

export interface ServiceAuthorization {
  services: string[];
  anyService: boolean;
}

/** A node's authorization; a record without one (written before authorization existed, or restored after data loss) may serve nothing. */
export function authorizationOf(rec: Pick<NodeRecord, 'authorization'>): ServiceAuthorization {
  return { services: rec.authorization?.services ?? [], anyService: rec.authorization?.anyService === true };
}

/** `*` stands for any run of name characters; everything else is literal. */
export function patternMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[a-z0-9_.-]*')}$`);
  return re.test(name);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.\\^$+?()[\]{}|-]/g, '\\$&');
}

/** The patterns that let `auth` serve `service` (empty when none does). */
export function matchingPatterns(auth: ServiceAuthorization, service: string): string[] {
  return auth.services.filter((p) => patternMatches(p, service));
}

export function mayServe(auth: ServiceAuthorization, service: string): boolean {
  // The registry's own identity is never a node's, whatever the node is allowed.
  if (service === REGISTRY_SERVICE) return false;
  return auth.anyService || matchingPatterns(auth, service).length > 0;
}

/** Throws MESH_ERR_SERVICE_NOT_AUTHORIZED unless the node may serve `service`. */
export function assertMayServe(rec: NodeRecord, service: string, what: 'register' | 'certificate'): void {
  if (service === REGISTRY_SERVICE)
    throw new MeshError(
      'MESH_ERR_BAD_REQUEST',
      `invalid request body: service.name: '${REGISTRY_SERVICE}' is reserved for the registry itself`,
    );
  if (mayServe(authorizationOf(rec), service)) return;
  const doing = what === 'register' ? 'register' : 'get a certificate for';
  throw new MeshError(
    'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    `node '${rec.name}' may not ${doing} service '${service}' (it is authorized for ${describeAuthorization(authorizationOf(rec))})`,
    {
      hint: `An admin can allow it: \`meshctl node allow ${rec.name} ${service}\`.`,
      details: { node: rec.name, service },
    },
  );
}

export function describeAuthorization(auth: ServiceAuthorization): string {
  if (auth.anyService) return 'any service';
  if (auth.services.length === 0) return 'no services';
  return auth.services.join(', ');
}

/** The authorization after an admin's allow/deny; throws when a deny would not take effect. */
export function changeAuthorization(
  auth: ServiceAuthorization,
  change: { action: 'allow' | 'deny'; services: string[]; anyService: boolean },
  node: string,
): ServiceAuthorization {
  if (change.action === 'allow') {
    return {
      services: [...new Set([...auth.services, ...change.services])].sort(),
      anyService: auth.anyService || change.anyService,
    };
  }
  const services = auth.services.filter((p) => !change.services.includes(p));
  const next = { services, anyService: change.anyService ? false : auth.anyService };
  for (const s of change.services) {
    if (next.anyService)
      throw new MeshError('MESH_ERR_CONFLICT', `node '${node}' may serve any service, so '${s}' stays allowed`, {
        hint: `Take the any-service grant away first: \`meshctl node deny ${node} --any-service\`.`,
      });
    const still = services.filter((p) => !s.includes('*') && patternMatches(p, s));
    if (still.length > 0)
      throw new MeshError('MESH_ERR_CONFLICT', `'${s}' stays allowed on node '${node}' by pattern '${still[0]}'`, {
        hint: `Deny the pattern instead: \`meshctl node deny ${node} '${still[0]}'\`.`,
      });
  }
  return next;
}
