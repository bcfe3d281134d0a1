/**
 * Keeps the agent's view of what its proxies need from the registry: the healthy instances
 * of each upstream service, the intentions and the revoked leaf serials. Each is a Consul-style blocking query loop
 * (answer on change, or after `wait`), with backoff and jitter when the registry is away;
 * the last answer is kept meanwhile, so proxies fail static.
 */
import type { Logger } from '../../util/log.js';
import type { InstanceView, Intention, IntentionAction } from '../../api/schemas.js';
import type { ConfigEntry, IntentionPermission } from '../../api/config-entries.js';
import type { RegistryLink } from '../registry-link.js';
import type { Blocking, RegistryClient } from '../../api/registry-client.js';
import { Backoff } from '../../util/backoff.js';
import { normalizeSerial } from '../../ca/serial.js';

export interface IntentionsView {
  defaultAction: IntentionAction;
  intentions: Array<Pick<Intention, 'source' | 'destination' | 'action'> & { permissions?: IntentionPermission[] }>;
}

export interface CatalogWatchEvents {
  /** Something a proxy snapshot depends on changed. */
  onChange: () => void;
}

/**
 * One blocking-query loop: asks from the last revision, and after a failure waits (exponential
 * backoff with jitter, 250 ms to 15 s) before asking again from the same revision. Exported for
 * the fault suite's reconnecting agents, which run this very loop.
 */
export class WatchLoop {
  #stopped = false;
  readonly #ac = new AbortController();
  readonly #backoff = new Backoff(250, 15_000);
  #timer: NodeJS.Timeout | undefined;

  readonly #step: (index: number, signal: AbortSignal) => Promise<number>;
  readonly #log: Logger;
  readonly #what: string;

  constructor(step: (index: number, signal: AbortSignal) => Promise<number>, log: Logger, what: string) {
    this.#step = step;
    this.#log = log;
    this.#what = what;
  }

  start(): void {
    void this.#run(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ac.abort();
  }

  async #run(index: number): Promise<void> {
    while (!this.#stopped) {
      try {
        const next = await this.#step(index, this.#ac.signal);
        // A revision going backwards means the registry lost data: start over.
        index = next < index ? 0 : next;
        this.#backoff.reset();
      } catch (e) {
        if (this.#stopped) return;
        const delay = this.#backoff.next();
        if (this.#backoff.failures === 1)
          this.#log.warn(
            { err: (e as Error).message, watch: this.#what },
            'registry watch failed; keeping the last answer and retrying',
          );
        await new Promise<void>((r) => {
          this.#timer = setTimeout(r, delay);
          this.#timer.unref();
        });
        // The index is kept: every registry of the mesh shares the store's revisions, so the
        // next try (on whichever registry answers) resumes where this one stopped.
      }
    }
  }
}

export class CatalogWatch {
  readonly #endpoints = new Map<string, InstanceView[]>();
  readonly #loops = new Map<string, WatchLoop>();
  #intentions: IntentionsView | undefined;
  #intentionLoop: WatchLoop | undefined;
  /** Serials of revoked service leaves, sorted; undefined until the registry first answered. */
  #revoked: string[] | undefined;
  #revokedLoop: WatchLoop | undefined;
  /** Config entries but service-intentions (those come as intentions); undefined until the registry answered. */
  #config: ConfigEntry[] | undefined;
  #configLoop: WatchLoop | undefined;

  readonly #link: RegistryLink;
  readonly #log: Logger;
  readonly #onChange: () => void;
  readonly #waitSeconds;

  constructor(link: RegistryLink, log: Logger, onChange: () => void, waitSeconds = 300) {
    this.#link = link;
    this.#log = log;
    this.#onChange = onChange;
    this.#waitSeconds = waitSeconds;
  }

  start(): void {
    this.#intentionLoop = this.#follow(
      'intentions',
      async (c, q) => {
        const res = await c.intentions(q);
        const view: IntentionsView = {
          defaultAction: res.defaultAction,
          intentions: res.intentions.map((i) => {
            const p = (i as { permissions?: IntentionPermission[] }).permissions;
            return { source: i.source, destination: i.destination, action: i.action, ...(p ? { permissions: p } : {}) };
          }),
        };
        return { view, revision: res.revision };
      },
      () => this.#intentions,
      (view) => (this.#intentions = view),
      (view) => view.intentions.length,
    );
    this.#revokedLoop = this.#follow(
      'revoked certificates',
      async (c, q) => {
        const res = await c.revoked(q);
        // Node certificates never reach a proxy (they are not svc identities): leaves only.
        const view = res.revoked
          .filter((r) => r.kind === 'leaf')
          .map((r) => normalizeSerial(r.serial))
          .sort();
        return { view, revision: res.revision };
      },
      () => this.#revoked,
      (view) => (this.#revoked = view),
      (view) => view.length,
    );
    this.#configLoop = this.#follow(
      'config entries',
      async (c, q) => {
        const res = await c.configEntries({}, q);
        const view = res.entries.map((e) => e.entry).filter((e) => e.kind !== 'service-intentions');
        return { view, revision: res.revision };
      },
      () => this.#config,
      (view) => (this.#config = view),
      (view) => view.length,
    );
  }

  /**
   * Starts a loop over one registry read: `read` asks one registry (blocking from the query's
   * index, held on the registry the link is on; the link asks the very same question on another
   * registry when one fails or it moved) and
   * gives this watch's view of the answer; a view unlike the last one (as `key` sees it) is
   * kept and announced, so an answer that changes nothing a proxy uses pushes nothing. At
   * debug level each answer is logged ('watch answered': the index it was asked from, the
   * revision answered, whether the view changed, its `size`, the registry that answered).
   */
  #follow<T>(
    what: string,
    read: (
      c: RegistryClient,
      q: Required<Pick<Blocking, 'index' | 'wait' | 'signal'>>,
    ) => Promise<{ view: T; revision: number }>,
    last: () => T | undefined,
    keep: (view: T) => void,
    size: (view: T) => number,
    key: (view: T) => unknown = (view) => view,
  ): WatchLoop {
    const loop = new WatchLoop(
      async (index, signal) => {
        const wait = `${this.#waitSeconds}s`;
        // Whichever registry answers was asked the same question (its index included); the
        // link holds it on the registry it is on and asks again there when it moves.
        const { view, revision, asked, registry } = await this.#link.watch(
          async (c, held) => ({
            ...(await read(c, { index, wait, signal: held })),
            asked: index,
            registry: c.baseUrl,
          }),
          signal,
        );
        const prev = last();
        const changed = prev === undefined || JSON.stringify(key(prev)) !== JSON.stringify(key(view));
        // What each answer was asked from and gave (the HA tests follow a watch across a failover with it).
        if (this.#log.isLevelEnabled('debug'))
          this.#log.debug(
            { watch: what, index: asked, revision, changed, size: size(view), registry },
            'watch answered',
          );
        if (changed) {
          keep(view);
          this.#onChange();
        }
        return revision;
      },
      this.#log,
      what,
    );
    loop.start();
    return loop;
  }

  /** Config entries (routers, splitters, resolvers, defaults); undefined until the registry answered. */
  configEntries(): ConfigEntry[] | undefined {
    return this.#config;
  }

  /** Watches exactly these upstream services (starting and stopping loops as needed). */
  setServices(names: ReadonlySet<string>): void {
    for (const [name, loop] of this.#loops) {
      if (!names.has(name)) {
        loop.stop();
        this.#loops.delete(name);
        this.#endpoints.delete(name);
      }
    }
    for (const name of names) {
      if (this.#loops.has(name)) continue;
      const loop = this.#follow(
        `service ${name}`,
        async (c, q) => {
          const res = await c.instances(name, { healthyOnly: true, ...q });
          return { view: res.instances, revision: res.revision };
        },
        () => this.#endpoints.get(name),
        (view) => this.#endpoints.set(name, view),
        (view) => view.length,
        endpointKey,
      );
      this.#loops.set(name, loop);
    }
  }

  instancesOf(name: string): InstanceView[] | undefined {
    return this.#endpoints.get(name);
  }

  intentionsView(): IntentionsView | undefined {
    return this.#intentions;
  }

  /** Revoked leaf serials; undefined until the registry answered (a proxy keeps serving the list it has). */
  revokedSerials(): string[] | undefined {
    return this.#revoked;
  }

  stop(): void {
    this.#intentionLoop?.stop();
    this.#revokedLoop?.stop();
    this.#configLoop?.stop();
    for (const l of this.#loops.values()) l.stop();
    this.#loops.clear();
  }
}

/** What of an instance matters to a proxy: a change elsewhere (check output) must not re-push. */
function endpointKey(list: InstanceView[]): string[] {
  return list.map((i) => `${i.id}@${i.node}@${i.address}:${i.meshPort ?? ''}/${i.weight}/${i.status}`).sort();
}
