/** A test's own child processes, read from /proc (Linux): whether one lives, its memory. */
import { readFile, writeFile } from 'node:fs/promises';

/** Whether process `pid` exists (signal 0 checks without sending anything). */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process's resident set (VmRSS) or its peak (VmHWM), in MB. */
export async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(s)?.[1];
  if (kb === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

/** Resets the process's peak RSS to its current RSS (needs to own the process, or root); false if refused. */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
