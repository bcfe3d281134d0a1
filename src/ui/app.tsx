/** The live dashboard: data from the polling hook, size from the terminal, keys into navigation. */
import { useMemo, useRef, useState } from 'react';
import { useApp, useInput } from 'ink';
import type { MeshDataSource } from './data/source.js';
import { useMeshData } from './hooks/use-mesh-data.js';
import { useTerminalSize } from './hooks/use-terminal-size.js';
import { INITIAL_NAV, keyAction, navigate, type NavState } from './navigation.js';
import { DashboardView } from './views/DashboardView.js';

export interface DashboardProps {
  source: MeshDataSource;
  intervalMs?: number;
  /** Header title, e.g. "meshctl demo". */
  title?: string;
  /** Extra single-key actions (the demo's "stop/start an api instance"), checked before navigation. */
  extraKeys?: Readonly<Record<string, () => void>>;
  /** What the extra keys do, for the help overlay: [keys, what]. */
  extraHelp?: ReadonlyArray<readonly [string, string]>;
}

export function Dashboard({ source, intervalMs = 1000, title, extraKeys, extraHelp }: DashboardProps) {
  const mesh = useMeshData(source, intervalMs);
  const { columns, rows } = useTerminalSize();
  const [nav, setNav] = useState<NavState>(INITIAL_NAV);
  const { exit } = useApp();
  const names = useMemo(() => mesh.data?.services.map((s) => s.name) ?? [], [mesh.data]);
  // The input handler reads the current list through a ref rather than being re-bound per poll.
  const namesRef = useRef(names);
  namesRef.current = names;

  useInput((input, key) => {
    const extra = extraKeys?.[input];
    if (extra) {
      extra();
      return;
    }
    const action = keyAction(input, key);
    if (action === 'quit') exit();
    else if (action) setNav((s) => navigate(s, action, namesRef.current));
  });

  // A selection that vanished from the catalog falls back to the first service.
  const selected = nav.selected !== undefined && names.includes(nav.selected) ? nav.selected : names[0];
  return (
    <DashboardView
      snapshot={mesh.data}
      reachable={mesh.reachable}
      error={mesh.error}
      lastUpdated={mesh.lastUpdated}
      now={new Date()}
      width={columns}
      // One line short of the screen: an Ink frame as tall as the terminal is redrawn by clearing it.
      height={Math.max(3, rows - 1)}
      mode={nav.mode}
      help={nav.help}
      selected={nav.mode === 'detail' ? nav.selected : selected}
      interactive
      sourceLabel={source.label}
      {...(title ? { title } : {})}
      {...(extraHelp ? { extraHelp } : {})}
    />
  );
}
