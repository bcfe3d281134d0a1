/** Foreground daemons (`registry start`, `agent start`): run until SIGINT/SIGTERM, then close once. */
export function runUntilSignal(close: () => Promise<void>, onHup?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`received ${sig}, stopping\n`);
      // A stuck close must not keep systemd waiting past its TimeoutStopSec.
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      close().then(resolve, reject);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (onHup) process.on('SIGHUP', onHup);
  });
}
