/**
 * A terminal that closes (EIO) or a reader that goes away (EPIPE, `meshctl … | head`) must not
 * kill a command half-way: the demo would leave its sidecars running, a daemon would die with its
 * supervisor's pipe. There is nobody left to read the output, so it is dropped.
 */
export function dropOutputWhenReaderGone(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) stream.on('error', () => undefined);
}

/** The live views need a terminal on both ends: raw keys in, cursor control out. */
export function bothEndsAreTerminal(): boolean {
  return process.stdout.isTTY === true && process.stdin.isTTY === true;
}
