/** What every outbound listener shares with the rest of the proxy: its access log and whose traffic it carries. */
import type { AccessLog } from '../access-log.js';

export interface OutboundContext {
  readonly accessLog: AccessLog;
  /** This service's name: the `source` of outbound access log lines. Set on every snapshot. */
  source: string;
}
