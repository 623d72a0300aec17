import { describe, expect, it } from "vitest";

import { DeviceClient, FacegateError } from "../src/client";

function fakeApi(answer: (request: Request) => Response | Promise<Response>) {
  const requests: Array<{ method: string; url: string; auth: string | null; key: string | null; body: string }> = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push({
      method: request.method,
      url: request.url,
      auth: request.headers.get("authorization"),
      key: request.headers.get("idempotency-key"),
      body: request.method === "GET" ? "" : await request.clone().text(),
    });
    return answer(request);
  };
  const client = new DeviceClient({ baseUrl: "http://api.test/", token: "tok", fetch: fetchFn as typeof fetch, retry: { sleep: async () => {} } });
  return { client, requests };
}

const ok = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("DeviceClient", () => {
  it("reads the notice with the device token, never a subject in the path", async () => {
    const { client, requests } = fakeApi(() => ok({ version: 3, sha256: "ab" }));
    const notice = await client.notice("zh-CN");
    expect(notice.version).toBe(3);
    expect(requests[0]).toMatchObject({ method: "GET", url: "http://api.test/v1/device/notice?locale=zh-CN", auth: "Bearer tok" });
  });

  it("records a refusal against the notice shown, with an Idempotency-Key", async () => {
    const { client, requests } = fakeApi(() => ok({}, 201));
    await client.consent({ version: 2, sha256: "f".repeat(64) } as never, "refused", "en");
    expect(JSON.parse(requests[0]!.body)).toEqual({
      notice_version: 2,
      notice_sha256: "f".repeat(64),
      decision: "refused",
      channel: "web",
      locale: "en",
      age_band: "adult",
    });
    expect(requests[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("sends the burst and retries a lost answer with the same key", async () => {
    let calls = 0;
    const { client, requests } = fakeApi(() => (++calls === 1 ? ok({ code: "service_unavailable" }, 503) : ok({ decision: "match" })));
    const burst = { session_id: "a".repeat(32), frames: ["/9j/"], timestamps_ms: [0] };
    expect((await client.verify(burst)).decision).toBe("match");
    expect(requests).toHaveLength(2);
    expect(requests[0]!.key).toBe(requests[1]!.key);
    expect(JSON.parse(requests[1]!.body)).toEqual({ liveness: burst, security_level: "high" });
  });

  it("throws the problem as a FacegateError with a message to act on", async () => {
    const { client } = fakeApi(() =>
      new Response(JSON.stringify({ status: 403, code: "operation_not_allowed", title: "t", detail: "d" }), {
        status: 403,
        headers: { "content-type": "application/problem+json" },
      }),
    );
    const error = await client.enrol({ session_id: "a".repeat(32), frames: ["x"], timestamps_ms: [0] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FacegateError);
    expect((error as FacegateError).code).toBe("operation_not_allowed");
    expect((error as FacegateError).text("en").alternative).toBe(true);
  });

  it("starts and verifies the e-mail code", async () => {
    const { client, requests } = fakeApi((r) =>
      r.url.endsWith("/verify") ? ok({ decision: "match", method: "email_otp" }) : ok({ challenge_id: "c1", status: "pending" }, 201),
    );
    const challenge = await client.startAlternative("s".repeat(72), "email_otp", "en");
    const result = await client.verifyAlternative(challenge.challenge_id, "123456");
    expect(result.method).toBe("email_otp");
    expect(requests.map((r) => r.url)).toEqual([
      "http://api.test/v1/device/fallback/challenges",
      "http://api.test/v1/device/fallback/challenges/c1/verify",
    ]);
    expect(JSON.parse(requests[1]!.body)).toEqual({ code: "123456" });
  });
});
