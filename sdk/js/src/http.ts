/** The SDK's fetch: problem+json errors, and retries that are safe because every write carries one
 * Idempotency-Key for all of its attempts (the service answers a retried write with the first answer). */

import { type Locale, type ProblemText, problemText } from "./i18n";

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  code: string;
  detail?: string;
  [extra: string]: unknown;
}

/** A refused request: the problem+json body, and what to tell the person (`text(locale)`). */
export class FacegateError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title ?? ""}`);
    this.name = "FacegateError";
    this.problem = problem;
  }
  get code(): string {
    return this.problem.code;
  }
  get status(): number {
    return this.problem.status;
  }
  text(locale: Locale): ProblemText {
    return problemText(this.code, locale);
  }
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** First back-off in ms, doubled per attempt, with jitter (default 400). */
  baseDelayMs?: number;
  /** Longest wait in ms, a Retry-After included (default 8000). */
  maxDelayMs?: number;
  /** How to wait (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
  /** A new key for a write (default crypto.randomUUID). */
  newKey?: () => string;
  random?: () => number;
}

/** Statuses worth another attempt with the same key: the write did not happen, or its answer was lost. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_CODES = new Set(["request_in_progress", "conflict", "rate_limited", "service_unavailable"]);
const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? Math.max(0, seconds * 1000) : undefined;
}

async function problemOf(response: Response): Promise<Problem | undefined> {
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json")) return undefined;
  try {
    const body = (await response.clone().json()) as Partial<Problem> | null;
    if (body && typeof body.code === "string") return { ...body, status: response.status, code: body.code };
  } catch {
    // not JSON after all
  }
  return undefined;
}

/** Whether a failed answer is worth retrying with the same Idempotency-Key. */
export async function retryable(response: Response): Promise<boolean> {
  if (response.status === 409 || response.status === 429 || response.status === 503) {
    const problem = await problemOf(response);
    // 409 is retried only while the first request runs (request_in_progress) or for a lost race (conflict);
    // a gateway's own 429/503 carries no code and is retried by status.
    return problem ? RETRY_CODES.has(problem.code) : response.status !== 409;
  }
  return RETRY_STATUSES.has(response.status);
}

/** A fetch that retries network failures and retryable answers, with one Idempotency-Key per write. */
export function retryingFetch(base: typeof fetch = globalThis.fetch.bind(globalThis), options: RetryOptions = {}) {
  const attempts = options.attempts ?? 4;
  const baseDelay = options.baseDelayMs ?? 400;
  const maxDelay = options.maxDelayMs ?? 8000;
  const wait = options.sleep ?? sleep;
  const newKey = options.newKey ?? (() => crypto.randomUUID());
  const random = options.random ?? Math.random;

  return async function facegateFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const first = new Request(input, init);
    if (WRITES.has(first.method) && !first.headers.has("idempotency-key")) {
      first.headers.set("idempotency-key", newKey());
    }
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const request = first.clone(); // the same body and the same key on every attempt
      let response: Response | undefined;
      try {
        response = await base(request);
      } catch (error) {
        lastError = error; // the network: the request may or may not have arrived; the key makes it safe
      }
      if (response && (attempt === attempts || !(await retryable(response)))) return response;
      const backoff = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1) * (0.75 + 0.5 * random()));
      const told = response ? retryAfterMs(response) : undefined;
      if (attempt < attempts) await wait(Math.min(maxDelay, told ?? backoff));
    }
    throw new FacegateError({
      status: 0,
      code: "network_error",
      title: "The service could not be reached",
      detail: String(lastError),
    });
  };
}

/** The body of a successful answer, or a FacegateError with the problem+json of a refusal. */
export async function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): Promise<T> {
  if (result.response.ok && result.data !== undefined) return result.data;
  if (result.response.ok) return undefined as T; // 204
  const error = result.error as Partial<Problem> | undefined;
  if (error && typeof error === "object" && typeof error.code === "string") {
    throw new FacegateError({ ...error, status: result.response.status, code: error.code });
  }
  throw new FacegateError({
    status: result.response.status,
    code: result.response.status >= 500 ? "internal_error" : "invalid_request",
    title: result.response.statusText,
  });
}
