/**
 * One store read and one serialized body for the many blocking queries a change wakes at once.
 * When a change reaches N agents waiting on the same query, each would read the same keys and
 * serialize the same answer: N reads of the store (N etcd round trips) and N JSON.stringify of
 * one value, which is most of what a change costs a registry with thousands of watchers.
 *
 * A request may share a read only if that read started after (a) the request arrived, so a
 * plain read still sees every write acknowledged before it was sent, and (b) the registry had
 * heard of the revision the request was woken for, so a woken watcher's answer shows the change
 * that woke it. Reads are keyed by what the answer depends on (route, parameters, query without
 * `index`/`wait`); principals do not change these answers (those routes are `auth: 'any'`).
 */
export interface SharedAnswer {
  readonly revision: number;
  /** The answer as JSON, serialized once for everyone who shares it. */
  readonly body: Buffer;
}

interface InFlight {
  /** Order in which reads started, against which requests' arrival is compared. */
  readonly seq: number;
  /** The registry's known revision (notifier) when the read started. */
  readonly knownRevision: number;
  readonly answer: Promise<SharedAnswer>;
}

export class SharedReads {
  #seq = 0;
  readonly #inFlight = new Map<string, InFlight>();
  /** Reads that started, and requests that got a shared answer: for status and tests. */
  started = 0;
  joined = 0;

  /** A ticket taken when a request arrives: reads started after it may serve the request. */
  arrival(): number {
    return this.#seq;
  }

  /**
   * The answer for `key`, from a read in flight that qualifies (see above) or from a new one.
   * `knownRevision` is the registry's revision now; `needRevision` the one the request needs.
   */
  read<T extends { revision: number }>(
    key: string,
    arrival: number,
    knownRevision: number,
    needRevision: number,
    read: () => Promise<T>,
  ): Promise<SharedAnswer> {
    const cur = this.#inFlight.get(key);
    if (cur && cur.seq > arrival && cur.knownRevision >= needRevision) {
      this.joined += 1;
      return cur.answer;
    }
    const seq = ++this.#seq;
    this.started += 1;
    const answer = read().then((value) => ({
      revision: value.revision,
      body: Buffer.from(JSON.stringify(value)),
    }));
    const entry: InFlight = { seq, knownRevision, answer };
    this.#inFlight.set(key, entry);
    const done = () => {
      if (this.#inFlight.get(key) === entry) this.#inFlight.delete(key);
    };
    answer.then(done, done);
    return answer;
  }
}
