/**
 * The registry's key layout in the store. Service instances are keyed by service name first,
 * so "instances of api" is one prefix range and one precise watch prefix.
 */
export const PREFIX = {
  nodes: 'nodes/',
  alive: 'alive/',
  services: 'services/',
  intentions: 'intentions/',
  /** Config entries but service-intentions (which are the intention records): `config/<kind>/<name>`. */
  config: 'config/',
  /** One record per config entry change (history): `config-history/<time>-<seq>-<random>`. */
  configHistory: 'config-history/',
  tokens: 'tokens/',
  meta: 'meta/',
  /** Certificates the CA issued to a node and that have not expired: `issued/<node>/<serial>`. */
  issued: 'issued/',
  /** Revoked certificates until they expire: `revoked/<serial>`. */
  revoked: 'revoked/',
} as const;

export const keys = {
  node: (name: string) => `${PREFIX.nodes}${name}`,
  alive: (name: string) => `${PREFIX.alive}${name}`,
  servicePrefix: (service: string) => `${PREFIX.services}${service}/`,
  instance: (service: string, node: string, id: string) => `${PREFIX.services}${service}/${node}/${id}`,
  intention: (source: string, destination: string) => `${PREFIX.intentions}${source}/${destination}`,
  token: (id: string) => `${PREFIX.tokens}${id}`,
  issuedPrefix: (node: string) => `${PREFIX.issued}${node}/`,
  issued: (node: string, serial: string) => `${PREFIX.issued}${node}/${serial}`,
  revoked: (serial: string) => `${PREFIX.revoked}${serial}`,
};

/** Splits `services/<svc>/<node>/<id>`. */
export function parseInstanceKey(key: string): { service: string; node: string; id: string } | undefined {
  const parts = key.split('/');
  if (parts.length !== 4 || parts[0] !== 'services') return undefined;
  return { service: parts[1]!, node: parts[2]!, id: parts[3]! };
}
