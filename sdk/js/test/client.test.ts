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

describe("DeviceClient with a token source (exams outlast a 10-minute device token)", () => {
  const b64 = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const jws = (n: number, exp: number) => `${b64({ alg: "ES256", kid: "k" })}.${b64({ n, exp })}.c2ln`;

  function world(answer: (request: Request) => Response = () => ok({ version: 1, sha256: "ab" })) {
    let clock = 1_000_000_000_000; // ms
    let minted = 0;
    const auth: string[] = [];
    const keys: Array<string | null> = [];
    const bodies: string[] = [];
    const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      auth.push(request.headers.get("authorization") ?? "");
      keys.push(request.headers.get("idempotency-key"));
      bodies.push(request.method === "GET" ? "" : await request.clone().text());
      return answer(request);
    };
    const client = new DeviceClient({
      baseUrl: "http://api.test",
      token: async () => jws(++minted, clock / 1000 + 600),
      fetch: fetchFn as typeof fetch,
      retry: { sleep: async () => {} },
      now: () => clock,
    });
    return {
      client,
      auth,
      keys,
      bodies,
      minted: () => minted,
      advance: (ms: number) => {
        clock += ms;
      },
    };
  }

  it("mints on first use, keeps the token while it is valid and mints again a minute before it expires", async () => {
    const w = world();
    await w.client.notice("en");
    w.advance(8 * 60_000); // 2 minutes left
    await w.client.notice("en");
    expect(w.minted()).toBe(1);
    w.advance(60_000 + 1); // under a minute left
    await w.client.notice("en");
    expect(w.minted()).toBe(2);
    expect(w.auth[0]).toBe(w.auth[1]);
    expect(w.auth[2]).not.toBe(w.auth[1]);
    expect(w.auth[2]).toBe(`Bearer ${jws(2, (1_000_000_000_000 + 9 * 60_000 + 1) / 1000 + 600)}`);
  });

  it("after a 401 mints once and sends the same write again (same body, same Idempotency-Key)", async () => {
    let calls = 0;
    const w = world(() => (++calls === 1 ? new Response(JSON.stringify({ message: "Unauthorized" }), { status: 401 }) : ok({}, 201)));
    await w.client.consent({ version: 2, sha256: "f".repeat(64) } as never, "granted", "en");
    expect(w.minted()).toBe(2);
    expect(w.auth).toHaveLength(2);
    expect(w.auth[1]).not.toBe(w.auth[0]);
    expect(w.keys[1]).toBe(w.keys[0]);
    expect(w.bodies[1]).toBe(w.bodies[0]);
    expect(JSON.parse(w.bodies[1]!).decision).toBe("granted");
  });

  it("shares one minting between concurrent requests", async () => {
    const w = world();
    await Promise.all([w.client.notice("en"), w.client.notice("zh-CN"), w.client.session()]);
    expect(w.minted()).toBe(1);
    expect(new Set(w.auth).size).toBe(1);
  });

  it("with a fixed token, a 401 is the caller's to handle (nothing to mint)", async () => {
    const { client, requests } = fakeApi(() => new Response(JSON.stringify({ message: "Unauthorized" }), { status: 401 }));
    await expect(client.notice("en")).rejects.toBeInstanceOf(FacegateError);
    expect(requests).toHaveLength(1);
  });
});
