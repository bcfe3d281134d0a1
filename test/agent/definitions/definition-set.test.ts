import { describe, expect, it } from 'vitest';
import { DefinitionSet, parseDefinitionFile, type DefinitionEvent } from '../../../src/agent/definitions/index.js';
import type { ServiceRegistration } from '../../../src/api/schemas.js';

/** Registrations as the parser makes them, from a compact YAML body. */
function svcs(yaml: string): ServiceRegistration[] {
  return parseDefinitionFile('x.yaml', yaml).services;
}

const upsert = (file: string, yaml: string): DefinitionEvent => ({ type: 'upsert', file, services: svcs(yaml) });
const remove = (file: string): DefinitionEvent => ({ type: 'remove', file });
const invalid = (file: string, message = `${file}:1:1: broken`): DefinitionEvent => ({
  type: 'invalid',
  file,
  error: { message, line: 1, column: 1 },
});

const names = (regs: ServiceRegistration[]) => regs.map((r) => r.id ?? r.name);
const ids = (ds: { id: string }[]) => ds.map((d) => d.id);

describe('DefinitionSet', () => {
  it('registers a new file, re-registers only what changed, and deregisters what a file no longer defines', () => {
    const set = new DefinitionSet();
    let ch = set.apply(upsert('/d/a.yaml', 'services: [{ name: api, port: 1 }, { name: web, port: 2 }]'));
    expect(names(ch.register)).toEqual(['api', 'web']);
    expect(ch.deregister).toEqual([]);

    // Same content again: nothing to do.
    ch = set.apply(upsert('/d/a.yaml', 'services: [{ name: api, port: 1 }, { name: web, port: 2 }]'));
    expect(ch).toEqual({ deregister: [], register: [], invalid: [] });

    // web's port changes, api is renamed api2.
    ch = set.apply(upsert('/d/a.yaml', 'services: [{ name: api2, port: 1 }, { name: web, port: 3 }]'));
    expect(ch.deregister).toEqual([{ id: 'api', name: 'api', file: '/d/a.yaml' }]);
    expect(names(ch.register)).toEqual(['api2', 'web']);
    expect(ch.register.find((r) => r.name === 'web')!.port).toBe(3);
    expect(names(set.services())).toEqual(['api2', 'web']);
    expect(set.fileOf('web')).toBe('/d/a.yaml');
  });

  it('an id that moves to another service name is deregistered, then registered', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/a.yaml', 'service: { name: api, id: main, port: 1 }'));
    const ch = set.apply(upsert('/d/a.yaml', 'service: { name: web, id: main, port: 1 }'));
    expect(ch.deregister).toEqual([{ id: 'main', name: 'api', file: '/d/a.yaml' }]);
    expect(ch.register.map((r) => [r.id, r.name])).toEqual([['main', 'web']]);
  });

  it('a broken file keeps its last good services; a later delete removes them', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/a.yaml', 'service: { name: api, port: 1 }'));
    let ch = set.apply(invalid('/d/a.yaml'));
    expect(ch).toEqual({
      deregister: [],
      register: [],
      invalid: [{ file: '/d/a.yaml', error: { message: '/d/a.yaml:1:1: broken', line: 1, column: 1 } }],
    });
    expect(names(set.services())).toEqual(['api']);
    expect(set.files()).toEqual([
      {
        file: '/d/a.yaml',
        state: 'invalid',
        services: ['api'],
        error: { message: '/d/a.yaml:1:1: broken', line: 1, column: 1 },
      },
    ]);

    // Fixed again with the same content: already registered, nothing to do.
    ch = set.apply(upsert('/d/a.yaml', 'service: { name: api, port: 1 }'));
    expect(ch).toEqual({ deregister: [], register: [], invalid: [] });
    expect(set.files()[0]!.state).toBe('ok');

    set.apply(invalid('/d/a.yaml'));
    ch = set.apply(remove('/d/a.yaml'));
    expect(ids(ch.deregister)).toEqual(['api']);
    expect(set.services()).toEqual([]);
    expect(set.files()).toEqual([]);
  });

  it('a file that was never good and is removed changes nothing', () => {
    const set = new DefinitionSet();
    set.apply(invalid('/d/b.yaml'));
    expect(set.apply(remove('/d/b.yaml'))).toEqual({ deregister: [], register: [], invalid: [] });
    expect(set.apply(remove('/d/never.yaml'))).toEqual({ deregister: [], register: [], invalid: [] });
  });

  it('refuses the later of two files defining the same id, naming the other file', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/a.yaml', 'service: { name: api, port: 1 }'));
    set.apply(upsert('/d/b.yaml', 'service: { name: web, port: 2 }'));
    const ch = set.apply(upsert('/d/b.yaml', 'services: [{ name: web, port: 2 }, { name: api, port: 3 }]'));
    expect(ch.register).toEqual([]);
    expect(ch.deregister).toEqual([]);
    expect(ch.invalid).toHaveLength(1);
    expect(ch.invalid[0]!.file).toBe('/d/b.yaml');
    expect(ch.invalid[0]!.error.message).toBe(
      "/d/b.yaml: service id 'api' is already defined in /d/a.yaml: a service id may be defined by one file only (this file's previous services stay in force)",
    );
    // b keeps its last good version, a keeps api.
    expect(set.services().map((s) => [s.name, s.port])).toEqual([
      ['api', 1],
      ['web', 2],
    ]);
    expect(set.fileOf('api')).toBe('/d/a.yaml');
    expect(set.files().map((f) => [f.file, f.state])).toEqual([
      ['/d/a.yaml', 'ok'],
      ['/d/b.yaml', 'conflict'],
    ]);
  });

  it('a refused file is taken in once the other file lets go of the id', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/a.yaml', 'service: { name: api, port: 1 }'));
    expect(set.apply(upsert('/d/b.yaml', 'service: { name: api, port: 2 }')).invalid).toHaveLength(1);
    // a drops api: b's api (port 2) replaces it — one register, no deregister in between.
    const ch = set.apply(upsert('/d/a.yaml', 'service: { name: other, port: 5 }'));
    expect(ch.deregister).toEqual([]);
    expect(ch.register.map((r) => [r.name, r.port])).toEqual([
      ['other', 5],
      ['api', 2],
    ]);
    expect(set.fileOf('api')).toBe('/d/b.yaml');
  });

  it('a rename seen as "add new" before "remove old" ends with the services of the new file', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/old.yaml', 'service: { name: api, port: 1 }'));
    expect(set.apply(upsert('/d/new.yaml', 'service: { name: api, port: 1 }')).invalid).toHaveLength(1);
    const ch = set.apply(remove('/d/old.yaml'));
    // Same registration, new owner: nothing to deregister; registering again is harmless.
    expect(ch.deregister).toEqual([]);
    expect(names(ch.register)).toEqual(['api']);
    expect(set.fileOf('api')).toBe('/d/new.yaml');
    expect(set.files().map((f) => [f.file, f.state])).toEqual([['/d/new.yaml', 'ok']]);
  });

  it('a newer word about a refused file replaces the version waiting for retry', () => {
    const set = new DefinitionSet();
    set.apply(upsert('/d/a.yaml', 'service: { name: api, port: 1 }'));
    set.apply(upsert('/d/b.yaml', 'service: { name: api, port: 2 }'));
    set.apply(invalid('/d/b.yaml'));
    // b is now broken: when a goes, b's old refused content must not come back.
    const ch = set.apply(remove('/d/a.yaml'));
    expect(ids(ch.deregister)).toEqual(['api']);
    expect(ch.register).toEqual([]);
    expect(set.services()).toEqual([]);
  });
});
