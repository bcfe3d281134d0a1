/**
 * Polls a MeshDataSource: a full read every `intervalMs` (measured from the start of the last
 * read, so the dashboard refreshes at that rate however long a read takes). On failure the last
 * good snapshot stays and reads are retried with jittered, bounded backoff.
 */
import { useEffect, useState } from 'react';
import { MeshError, toMeshError } from '../../errors/index.js';
import { Backoff } from '../../util/backoff.js';
import { gatherMesh, type MeshDataSource, type MeshSnapshot } from '../data/source.js';

export interface MeshData {
  /** The last snapshot read successfully. */
  data: MeshSnapshot | undefined;
  /** The last read's error; cleared by the next success. */
  error: MeshError | undefined;
  /** Whether the last read succeeded; undefined until the first one has finished. */
  reachable: boolean | undefined;
  /** When `data` was read. */
  lastUpdated: Date | undefined;
}

/** Longest pause between retries while the registry is away. */
export const MAX_RETRY_MS = 5_000;

const INITIAL: MeshData = { data: undefined, error: undefined, reachable: undefined, lastUpdated: undefined };

export function useMeshData(source: MeshDataSource, intervalMs = 1000): MeshData {
  const [state, setState] = useState<MeshData>(INITIAL);

  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const backoff = new Backoff(intervalMs, Math.max(MAX_RETRY_MS, intervalMs));

    const tick = async (): Promise<void> => {
      const started = Date.now();
      let delay: number;
      try {
        const data = await gatherMesh(source);
        if (stopped) return;
        backoff.reset();
        setState({ data, error: undefined, reachable: true, lastUpdated: new Date() });
        delay = Math.max(0, intervalMs - (Date.now() - started));
      } catch (e) {
        if (stopped) return;
        const error = toMeshError(e, 'MESH_ERR_UNAVAILABLE');
        setState((prev) => ({ ...prev, error, reachable: false }));
        delay = backoff.next();
      }
      timer = setTimeout(() => void tick(), delay);
    };
    void tick();

    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [source, intervalMs]);

  return state;
}
