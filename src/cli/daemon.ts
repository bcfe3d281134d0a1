/**
 * Foreground daemons (`registry start`, `agent start`): run until SIGINT/SIGTERM, then close
 * once. The handlers are in place before start-up begins: without them a signal's default
 * action kills the process on the spot, and a supervisor (or a test) may send SIGTERM as
 * soon as it sees the daemon announce itself. A signal during start-up stops the daemon as
 * soon as it is up; a second signal ends the process at once. A daemon can also ask to be
 * stopped itself (`stopRequested`, e.g. after `meshctl agent leave`): it never kills its own process.
 */
export interface DaemonSpec<T> {
  start(): Promise<T>;
  /** Says the daemon is up (after the handlers are in place). */
  announce(daemon: T): void;
  close(daemon: T): Promise<void>;
  onHup?(daemon: T): void;
  /** Resolves when the daemon wants to stop on its own; stopping then goes as on SIGTERM. */
  stopRequested?(daemon: T): Promise<void>;
}

export async function runDaemon<T>(spec: DaemonSpec<T>): Promise<void> {
  let daemon: T | undefined;
  let stopSignal: NodeJS.Signals | 'a stop request' | undefined;
  let wake: (() => void) | undefined;
  const onStop = (sig: NodeJS.Signals) => {
    if (stopSignal) {
      process.stderr.write(`received ${sig} again, exiting now\n`);
      process.exit(1);
    }
    stopSignal = sig;
    wake?.();
  };
  const onHup = () => {
    if (daemon !== undefined) spec.onHup?.(daemon);
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  if (spec.onHup) process.on('SIGHUP', onHup);
  try {
    daemon = await spec.start();
    spec.announce(daemon);
    void spec.stopRequested?.(daemon).then(() => {
      stopSignal ??= 'a stop request';
      wake?.();
    });
    if (!stopSignal) await new Promise<void>((resolve) => (wake = resolve));
    process.stderr.write(`received ${stopSignal}, stopping\n`);
    // A stuck close must not keep systemd waiting past its TimeoutStopSec.
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await spec.close(daemon);
  } finally {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onHup);
  }
}
