/** Typed calls to the local agent's admin socket, for the CLI. */
import { HttpClient } from '../api/http-client.js';
import type { CheckStatus } from '../api/schemas.js';
import type { DefinitionProblem, ServiceView } from './admin-api.js';
import type { CheckStateView } from './checks/index.js';

/** The longest drain (MAX_DRAIN_SECONDS) and its exit grace, with room to spare. */
const LEAVE_TIMEOUT_MS = 330_000;

export class AgentClient {
  readonly #http: HttpClient;

  constructor(readonly socketPath: string) {
    this.#http = new HttpClient({ baseUrl: 'http://agent', socketPath, timeoutMs: 30_000 });
  }

  close(): void {
    this.#http.close();
  }

  async self(): Promise<Record<string, unknown>> {
    return (await this.#http.get<Record<string, unknown>>('/v1/agent/self')).body;
  }
  async services(): Promise<{ services: ServiceView[]; definitionProblems: DefinitionProblem[] }> {
    return (
      await this.#http.get<{ services: ServiceView[]; definitionProblems: DefinitionProblem[] }>('/v1/agent/services')
    ).body;
  }
  async register(
    service: unknown,
    opts: { replace?: boolean; dryRun?: boolean } = {},
  ): Promise<{ id: string; synced: boolean }> {
    const query = {
      ...(opts.replace === undefined ? {} : { replace: opts.replace }),
      ...(opts.dryRun ? { dryRun: true } : {}),
    };
    return (await this.#http.put<{ id: string; synced: boolean }>('/v1/agent/services', service, { query })).body;
  }
  async deregister(id: string): Promise<{ id: string; synced: boolean }> {
    return (await this.#http.delete<{ id: string; synced: boolean }>(`/v1/agent/services/${encodeURIComponent(id)}`))
      .body;
  }
  async ttlUpdate(checkId: string, status: CheckStatus, note = ''): Promise<CheckStateView> {
    return (await this.#http.put<CheckStateView>(`/v1/agent/checks/${encodeURIComponent(checkId)}`, { status, note }))
      .body;
  }
  /** Waits while the host's sidecars drain (up to the agent's drainSeconds, at most 300 s, + 5 s each side by side). */
  async leave(): Promise<{ left: boolean }> {
    return (await this.#http.post<{ left: boolean }>('/v1/agent/leave', {}, { timeoutMs: LEAVE_TIMEOUT_MS })).body;
  }
  async reload(): Promise<{ reloaded: boolean }> {
    return (await this.#http.post<{ reloaded: boolean }>('/v1/agent/reload', {})).body;
  }
}
