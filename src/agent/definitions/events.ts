/** What the directory watcher reports per file, and what DefinitionSet consumes. */
import type { ServiceRegistration } from '../../api/schemas.js';
import type { DefinitionError } from './parse.js';

/** The file was added or changed and parses: these are now all the services it defines. */
export interface UpsertEvent {
  type: 'upsert';
  file: string;
  services: ServiceRegistration[];
}

/** The file is gone: the services it defined (as last good) should go too. */
export interface RemoveEvent {
  type: 'remove';
  file: string;
}

/** The file is there but broken: keep its last good services, tell the user. Never implies removal. */
export interface InvalidEvent {
  type: 'invalid';
  file: string;
  error: DefinitionError;
}

export type DefinitionEvent = UpsertEvent | RemoveEvent | InvalidEvent;
