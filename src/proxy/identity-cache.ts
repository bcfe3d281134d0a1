/** The proxies' cached peer identity checks: one implementation, shared with the registry, in src/ca. */
export { cachedServerIdentityCheck, IdentityCache } from '../ca/identity-cache.js';
