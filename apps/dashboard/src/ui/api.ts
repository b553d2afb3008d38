import type { SuiteExecutionSummary } from './types.js';

/** A failed request to the dashboard's REST API. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store', signal });
  if (!response.ok) throw new ApiError(`GET ${path} answered ${response.status}`, response.status);
  return (await response.json()) as T;
}

/** `GET /api/executions`: every suite execution the server keeps, newest first. */
export async function fetchExecutions(signal?: AbortSignal): Promise<SuiteExecutionSummary[]> {
  const body = await getJson<{ executions: SuiteExecutionSummary[] }>('/api/executions', signal);
  return body.executions;
}
