/** The device's API client: every call carries the device-session token minted by the tenant's backend.
 * Paths and bodies are typed from the OpenAPI document (openapi-typescript + openapi-fetch). */

import createClient, { type Client } from "openapi-fetch";

import { FacegateError, type RetryOptions, retryingFetch, unwrap } from "./http";
import type { Locale } from "./i18n";
import type { components, paths } from "./openapi";
import { decodeToken } from "./token";

export type Schemas = components["schemas"];
export type Notice = Schemas["NoticeResponse"];
export type LivenessSession = Schemas["LivenessSessionResponse"];
export type Verification = Schemas["VerificationResponse"];
export type FallbackChallenge = Schemas["ChallengeResponse"];
export type FallbackVerification = Schemas["FallbackVerificationResponse"];
export type LivenessBurst = Schemas["LivenessBurst"];
export type Enrolment = Schemas["EnrolmentResponse"];
export type DeviceSession = Schemas["DeviceSessionView"];
type StartBody = Schemas["DeviceStartProctoringRequest"];
/** The start's body; mode (face), frame_interval_s (2) and locale (en) have the service's defaults. */
export type ProctoringStart = Omit<StartBody, "mode" | "frame_interval_s" | "locale"> &
  Partial<Pick<StartBody, "mode" | "frame_interval_s" | "locale">>;
export type ProctoringSession = Schemas["ProctoringSessionResponse"];
export type ProctoringFrame = Schemas["Frame"];
export type ProctoringFrames = Schemas["FramesResponse"];
export type ProctoringReport = Schemas["ProctoringReportResponse"];
export type SecurityLevel = "standard" | "high" | "very_high";
export type AlternativeMethod = "email_otp" | "sms_otp" | "totp" | "manual_review";

/** A device-session token, or a function that asks the tenant's backend for a new one (POST
 * /v1/device-sessions there). A token lives at most 10 minutes: give a function for anything longer, such as an
 * exam, and the client mints again a minute before the token expires, or once after a 401. */
export type TokenSource = string | (() => Promise<string>);

export interface DeviceClientOptions {
  /** The API's base URL, e.g. https://api.example.com (no trailing /v1). */
  baseUrl: string;
  /** The device-session token from the tenant's backend, or a function that mints one (see TokenSource). */
  token: TokenSource;
  fetch?: typeof fetch;
  retry?: RetryOptions;
  /** Mint again this long before the token's `exp` (ms, default 60000). */
  refreshBeforeMs?: number;
  /** The clock (tests pass a fake). */
  now?: () => number;
}

/** Seconds since the epoch at which a compact JWS expires (its `exp`), or undefined when it names none. */
function expiresAt(token: string): number | undefined {
  try {
    const exp = decodeToken(token).payload.exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** A fetch that sends `Authorization: Bearer <token>`. With a function as the source, it mints a token when it has
 * none or the one it has expires within `refreshBeforeMs`, and after a 401 (a token revoked or expired in flight)
 * it mints once more and sends the request again: the gateway refused it, so nothing was done. Concurrent requests
 * share one minting. */
export function bearerFetch(
  base: typeof fetch,
  source: TokenSource,
  refreshBeforeMs = 60_000,
  now: () => number = Date.now,
): typeof fetch {
  let current: string | undefined = typeof source === "string" ? source : undefined;
  let minting: Promise<string> | undefined;
  const mint = (): Promise<string> => {
    if (typeof source === "string") return Promise.resolve(source);
    minting ??= source().then(
      (token) => {
        current = token;
        minting = undefined;
        return token;
      },
      (error: unknown) => {
        minting = undefined;
        throw error;
      },
    );
    return minting;
  };
  const fresh = async (): Promise<string> => {
    if (current === undefined) return mint();
    const exp = expiresAt(current);
    if (typeof source !== "string" && exp !== undefined && exp * 1000 - now() <= refreshBeforeMs) return mint();
    return current;
  };
  return async function authorizedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const send = (token: string, r: Request) => {
      r.headers.set("authorization", `Bearer ${token}`);
      return base(r);
    };
    const used = await fresh();
    const response = await send(used, typeof source === "string" ? request : request.clone());
    if (response.status !== 401 || typeof source === "string") return response;
    // Another request may have minted meanwhile; otherwise mint now.
    const again = current !== undefined && current !== used ? current : await mint();
    return send(again, request);
  } as typeof fetch;
}

/** One person's device session: notice, consent or refusal, liveness, verification or enrolment, and the
 * non-face alternative. It can do nothing else (the token allows nothing else). */
export class DeviceClient {
  readonly api: Client<paths>;

  constructor(options: DeviceClientOptions) {
    const base = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/$/, ""),
      // Retries outermost: every attempt of a write carries the same Idempotency-Key and a token still valid.
      fetch: retryingFetch(bearerFetch(base, options.token, options.refreshBeforeMs, options.now), options.retry),
    });
  }

  async session(): Promise<DeviceSession> {
    return unwrap(await this.api.GET("/v1/device/session"));
  }

  async notice(locale: Locale): Promise<Notice> {
    return unwrap(await this.api.GET("/v1/device/notice", { params: { query: { locale } } }));
  }

  /** Records the person's choice on the notice they were shown (its version and digest). */
  async consent(notice: Notice, decision: "granted" | "refused", locale: Locale): Promise<unknown> {
    return unwrap(
      await this.api.POST("/v1/device/consents", {
        body: {
          notice_version: notice.version,
          notice_sha256: notice.sha256,
          decision,
          channel: "web",
          locale,
          age_band: "adult",
        },
      }),
    );
  }

  async livenessSession(): Promise<LivenessSession> {
    return unwrap(await this.api.POST("/v1/device/liveness/sessions", { body: {} }));
  }

  /** Verifies the person from a burst answering the challenge; `securityLevel` as the tenant chose it. */
  async verify(burst: LivenessBurst, securityLevel: SecurityLevel = "high"): Promise<Verification> {
    return unwrap(
      await this.api.POST("/v1/device/verifications", { body: { liveness: burst, security_level: securityLevel } }),
    );
  }

  async enrol(burst: LivenessBurst): Promise<Enrolment> {
    return unwrap(await this.api.POST("/v1/device/enrolments", { body: { liveness: burst } }));
  }

  /** Starts the exam sitting of the token's subject (purpose exam_proctoring): mode face needs the burst
   * answering `livenessSession()`'s challenge; the answer carries the capture policy and the notice. */
  async startProctoring(body: ProctoringStart): Promise<ProctoringSession> {
    return unwrap(await this.api.POST("/v1/device/proctoring/sessions", { body: body as StartBody }));
  }

  /** One batch of frames (base64 JPEG, `ts` in ms on this device's clock, increasing). `sequence` is the
   * session's next_sequence; sending the same batch again (same sequence, frames and times) is answered from
   * the stored answer (`replayed: true`), never applied twice. Prefer `ProctoringUploader`, which keeps count. */
  async sendFrames(sessionId: string, sequence: number, frames: ProctoringFrame[]): Promise<ProctoringFrames> {
    return unwrap(
      await this.api.POST("/v1/device/proctoring/sessions/{session_id}/frames", {
        params: { path: { session_id: sessionId } },
        body: { sequence, frames },
      }),
    );
  }

  /** The sitting as it stands (status, next_sequence, incidents; the report once ended): after a reload, read
   * next_sequence here and go on (`ProctoringUploader.resume`). */
  async proctoringSession(sessionId: string): Promise<ProctoringReport> {
    return unwrap(
      await this.api.GET("/v1/device/proctoring/sessions/{session_id}", {
        params: { path: { session_id: sessionId } },
      }),
    );
  }

  /** Ends the sitting: the signed report (ending again answers the same report). */
  async endProctoring(sessionId: string): Promise<ProctoringReport> {
    return unwrap(
      await this.api.POST("/v1/device/proctoring/sessions/{session_id}/end", {
        params: { path: { session_id: sessionId } },
      }),
    );
  }

  async startAlternative(sessionId: string, method: AlternativeMethod, locale: Locale): Promise<FallbackChallenge> {
    return unwrap(
      await this.api.POST("/v1/device/fallback/challenges", { body: { session_id: sessionId, method, locale } }),
    );
  }

  async verifyAlternative(challengeId: string, code: string): Promise<FallbackVerification> {
    return unwrap(
      await this.api.POST("/v1/device/fallback/challenges/{challenge_id}/verify", {
        params: { path: { challenge_id: challengeId } },
        body: { code },
      }),
    );
  }
}

export { FacegateError };
