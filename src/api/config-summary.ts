/**
 * What the CLI and the registry both say about a config entry: a one-line summary (history,
 * `get config`). Its YAML form is in config-yaml.ts, apart, so a registry that writes history
 * lines loads no YAML library until an apply asks for a diff. Type-only imports of the
 * schemas, so the CLI loads no zod.
 */
import type { ConfigEntry } from './config-entries.js';

/** One line saying what an entry does, for history and `get config`. */
export function summarize(e: ConfigEntry): string {
  switch (e.kind) {
    case 'service-defaults':
      return [e.protocol ? `protocol ${e.protocol}` : '', e.load_balancer ? `lb ${e.load_balancer.policy}` : '']
        .filter(Boolean)
        .join(', ');
    case 'service-resolver': {
      const subsets = Object.keys(e.subsets ?? {});
      return [
        subsets.length ? `subsets ${subsets.join(', ')}` : 'no subsets',
        e.default_subset ? `default ${e.default_subset}` : '',
        e.load_balancer ? `lb ${e.load_balancer.policy}` : '',
      ]
        .filter(Boolean)
        .join(', ');
    }
    case 'service-splitter':
      return e.splits
        .map(
          (s) =>
            `${s.weight}% ${[s.service && s.service !== e.name ? s.service : '', s.service_subset ?? ''].filter(Boolean).join('/') || e.name}`,
        )
        .join(', ');
    case 'service-router':
      return `${e.routes.length} route${e.routes.length === 1 ? '' : 's'}`;
    case 'service-intentions':
      return e.sources
        .map(
          (s) =>
            `${s.name} ${s.action ?? `L7 (${s.permissions!.length} permission${s.permissions!.length === 1 ? '' : 's'})`}`,
        )
        .join(', ');
  }
}
