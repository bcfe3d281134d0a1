import { describe, expect, it } from 'vitest';
import { parseDefinitionFile } from '../../../src/agent/definitions/index.js';
import { parseCheckSpec, runHttpCheck, runTcpCheck } from '../../../src/agent/checks/index.js';
import { isMeshError } from '../../../src/errors/index.js';
import { checkDef } from './helpers.js';

/** What a definition file says of `checks: [{ <kind>: <target> }]`: the stored target, or the refusal. */
function fromFile(kind: 'http' | 'tcp' | 'exec', target: string): { target: string } | { refused: string } {
  const text = `service:\n  name: a\n  port: 1\n  checks:\n    - ${kind}: ${JSON.stringify(target)}\n`;
  try {
    return { target: parseDefinitionFile('t.yaml', text).services[0]!.checks[0]!.target };
  } catch (e) {
    if (!isMeshError(e)) throw e;
    return { refused: e.message.replace(/^t\.yaml:\d+:\d+: service\.checks\[0\]\.\w+: /, '') };
  }
}

/** What `--check <spec>` says of the same target. */
function fromFlag(spec: string): { target: string } | { refused: string } {
  try {
    return { target: parseCheckSpec(spec).target };
  } catch (e) {
    if (!isMeshError(e)) throw e;
    return { refused: e.message.replace(/^invalid check '.*?': /, '') };
  }
}

// Targets the three readers used to disagree on (the file format had its own rules). An ftp://
// URL is not here: in a spec string the scheme names the kind, so --check calls it an unknown kind.
const TCP = [
  '127.0.0.1:9000',
  '[::1]:80',
  'db_1.internal:5432',
  'localhost',
  '::1:80',
  'bad_host!:80',
  'h:0',
  'h:70000',
];
const HTTP = [
  'http://127.0.0.1:9000/health',
  'https://[::1]:8443/',
  'http://',
  'http://127.0.0.1:99999/',
  'https://exa mple.com/',
  `http://h/${'a'.repeat(2100)}`,
];

describe('one check-target rule for files, flags and runners', () => {
  it.each(TCP)('tcp %s: the file and --check agree', (target) => {
    expect(fromFile('tcp', target)).toEqual(fromFlag(`tcp://${target}`));
  });

  it.each(HTTP)('http %s: the file and --check agree', (target) => {
    expect(fromFile('http', target)).toEqual(fromFlag(target));
  });

  it('a file may write a TCP target with or without tcp://, stored the same way as the flag stores it', () => {
    expect(fromFile('tcp', 'tcp://127.0.0.1:9000')).toEqual({ target: '127.0.0.1:9000' });
    expect(fromFlag('tcp://127.0.0.1:9000')).toEqual({ target: '127.0.0.1:9000' });
  });

  it('empty and over-long commands are refused alike', () => {
    expect(fromFile('exec', '  ')).toEqual({ refused: 'the command is empty' });
    expect(fromFlag("exec:'  '")).toEqual({ refused: 'the command is empty' });
    const long = 'x'.repeat(2049);
    expect(fromFile('exec', long)).toEqual(fromFlag(`exec:${long}`));
  });

  it('a target the parsers refuse is critical at the runner, with the same reason', async () => {
    // API bodies reach the scheduler without the file or flag parser.
    const tcp = await runTcpCheck(checkDef({ kind: 'tcp', target: 'bad_host!:80' }));
    expect(tcp.status).toBe('critical');
    expect(tcp.output).toContain((fromFlag('tcp://bad_host!:80') as { refused: string }).refused);
    const http = await runHttpCheck(checkDef({ kind: 'http', target: 'http://127.0.0.1:99999/' }));
    expect(http.status).toBe('critical');
    expect(http.output).toContain((fromFlag('http://127.0.0.1:99999/') as { refused: string }).refused);
  });
});
