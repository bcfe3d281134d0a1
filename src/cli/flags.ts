/** Shared flag definitions and value parsers; a bad value stops the command before anything changes. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { NAME_RE, SERVICE_PATTERN_RE, SERVICE_PATTERN_RULE } from '../api/names.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import type { AgentFlags } from '../targets/agent.js';
import type { RegistryFlags } from '../targets/registry.js';

export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--registry <urls>',
        'registry URL, or several of one mesh comma-separated: the first that answers is used (default: saved by init, or MESHCTL_REGISTRY)',
      ),
    )
    .addOption(new Option('--token <token>', 'admin token (default: saved by init, or MESHCTL_TOKEN)'))
    .addOption(
      new Option('--ca-file <path>', 'mesh CA certificate to trust (default: saved by init, or MESHCTL_CA_FILE)'),
    );
}

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of text');
}

export function withAgentFlags(cmd: Command): Command {
  return cmd
    .option('--socket <path>', 'agent admin socket (default: from the agent config, or MESHCTL_AGENT_SOCKET)')
    .option(
      '--data-dir <dir>',
      'agent data directory (default: /var/lib/meshctl/agent as root, else ~/.local/share/meshctl/agent)',
    );
}

/** Only the registry flags of a command's options (commander hands over every option). */
export function registryFlags(opts: RegistryFlags): RegistryFlags {
  const out: RegistryFlags = {};
  if (opts.registry !== undefined) out.registry = opts.registry;
  if (opts.token !== undefined) out.token = opts.token;
  if (opts.caFile !== undefined) out.caFile = opts.caFile;
  return out;
}

/** Only the agent flags of a command's options. */
export function agentFlags(opts: AgentFlags): AgentFlags {
  const out: AgentFlags = {};
  if (opts.socket !== undefined) out.socket = opts.socket;
  if (opts.dataDir !== undefined) out.dataDir = opts.dataDir;
  return out;
}

export function parseName(what: string) {
  return (value: string): string => {
    if (!NAME_RE.test(value)) {
      throw new InvalidArgumentError(
        `'${value}' is not a valid ${what}: use 1-63 lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit.`,
      );
    }
    return value;
  };
}

/**
 * A parser for a duration flag (500ms, 10s, 5m, 24h, 7d), giving milliseconds; outside
 * [minMs, maxMs] the message names `range`.
 */
export function parseDurationFlag(opts: { example: string; minMs?: number; maxMs?: number; range?: string }) {
  return (value: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch {
      throw new InvalidArgumentError(`'${value}' is not a duration, e.g. ${opts.example}.`);
    }
    if (ms < (opts.minMs ?? 0) || ms > (opts.maxMs ?? Infinity))
      throw new InvalidArgumentError(`'${value}' is out of range: use ${opts.range ?? 'another duration'}.`);
    return ms;
  };
}

export interface DurationSpec {
  example: string;
  minMs?: number;
  maxMs?: number;
  range?: string;
  /** The default, shown in --help as a duration (10s, 24h), never as a bare number. */
  defaultMs?: number;
  /** What the command gets: milliseconds (the default) or whole seconds. */
  unit?: 'ms' | 's';
}

/** A duration flag (10s, 5m, 24h): every flag that takes a length of time is made by this. */
export function durationOption(flags: string, description: string, spec: DurationSpec): Option {
  const toUnit = (ms: number) => (spec.unit === 's' ? Math.round(ms / 1000) : ms);
  const parse = parseDurationFlag(spec);
  const opt = new Option(flags, description).argParser((value: string) => toUnit(parse(value)));
  return spec.defaultMs === undefined ? opt : opt.default(toUnit(spec.defaultMs), formatDuration(spec.defaultMs));
}

/** `--service api`, `--service 'batch-*'` (repeatable): what a node may serve. */
export function collectServicePattern(value: string, previous: string[] = []): string[] {
  if (!SERVICE_PATTERN_RE.test(value))
    throw new InvalidArgumentError(`'${value}' is not a service name or pattern: use ${SERVICE_PATTERN_RULE}.`);
  return [...previous, value];
}

export function parseIntentionName(value: string): string {
  return value === '*' ? value : parseName('service name')(value);
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`'${value}' is not a port: use a whole number from 1 to 65535.`);
  }
  return n;
}

export function parsePositiveInt(what: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max)
      throw new InvalidArgumentError(`'${value}' is not a valid ${what}: use a whole number from 1 to ${max}.`);
    return n;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
