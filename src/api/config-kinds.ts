/** The config entry kinds, without zod (the CLI parses KIND arguments with it). */
export const CONFIG_KINDS = [
  'service-defaults',
  'service-resolver',
  'service-splitter',
  'service-router',
  'service-intentions',
] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

export function isConfigKind(s: unknown): s is ConfigKind {
  return typeof s === 'string' && (CONFIG_KINDS as readonly string[]).includes(s);
}
