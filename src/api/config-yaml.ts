/**
 * The YAML form of a config entry, as `get config -o yaml` prints it and as `apply --dry-run`
 * diffs it. A module of its own so that only those load the YAML library (config-summary.ts).
 */
import { stringify } from 'yaml';
import type { ConfigEntry } from './config-entries.js';

export function entryYaml(e: ConfigEntry): string {
  return stringify(e, { lineWidth: 0 });
}
