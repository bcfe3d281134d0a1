/** Service definition files: the format (messages, schema, conversion), parsing with line numbers, the watched directory, and the file → services bookkeeping. */
export { formatPath, type FormatIssue, type PathSegment } from './messages.js';
export {
  CHECK_KINDS,
  MAX_SERVICES_PER_FILE,
  definitionFileSchema,
  parseUpstreamShorthand,
  type CheckKind,
} from './schema.js';
export { definitionsFromValue, instanceId, type FormatResult } from './conversion.js';
export {
  DEFINITION_EXTENSIONS,
  MAX_DEFINITION_BYTES,
  definitionErrorOf,
  hasDefinitionExtension,
  parseDefinitionFile,
  readDefinitionFile,
  type DefinitionError,
  type DefinitionErrorDetails,
  type DefinitionFile,
} from './parse.js';
export type { DefinitionEvent, InvalidEvent, RemoveEvent, UpsertEvent } from './events.js';
export {
  DefinitionSet,
  type DefinitionChanges,
  type Deregistration,
  type FileState,
  type FileStatus,
} from './definition-set.js';
export {
  DEFAULT_DEFINITIONS_DIR,
  DefinitionWatcher,
  isDefinitionFileName,
  type DefinitionWatcherEvents,
  type DefinitionWatcherOptions,
} from './watcher.js';
