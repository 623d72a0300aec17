import { describe, expect, it } from "vitest";

import { FacegateError, retryingFetch } from "../src/http";

const problem = (status: number, code: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ status, code, title: code, detail: code }), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });

function recorder(answers: Array<Response | Error>) {
  const seen: Array<{ method: string; key: string | null; body: string }> = [];
  const waits: number[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    seen.push({ method: request.method, key: request.headers.get("idempotency-key"), body: await request.text() });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return next!;
  };
  let n = 0;
  const f = retryingFetch(fetchFn as typeof fetch, {
    sleep: async (ms) => void waits.push(ms),
    newKey: () => `key-${++n}`,
    random: () => 0.5,
  });
  return { f, seen, waits };
}

describe("retries with Idempotency-Key", () => {
  it("retries a lost write with the same key and the same body", async () => {
    const { f, seen, waits } = recorder([new TypeError("network down"), problem(503, "service_unavailable"), new Response("{}", { status: 200 })]);
    const response = await f("http://x/v1/device/verifications", { method: "POST", body: '{"a":1}' });
    expect(response.status).toBe(200);
    expect(seen.map((s) => s.key)).toEqual(["key-1", "key-1", "key-1"]);
    expect(seen.every((s) => s.body === '{"a":1}')).toBe(true);
    expect(waits).toEqual([400, 800]); // doubling back-off (jitter 0.5 -> factor 1)
  });

  it("gives each write its own key", async () => {
    const { f, seen } = recorder([new Response("{}"), new Response("{}")]);
    await f("http://x/a", { method: "POST", body: "1" });
    await f("http://x/a", { method: "POST", body: "2" });
    expect(seen.map((s) => s.key)).toEqual(["key-1", "key-2"]);
  });

  it("keeps a key the caller set, and sends none on a read", async () => {
    const { f, seen } = recorder([new Response("{}"), new Response("{}")]);
    await f("http://x/a", { method: "POST", body: "1", headers: { "idempotency-key": "mine" } });
    await f("http://x/a");
    expect(seen.map((s) => s.key)).toEqual(["mine", null]);
  });

  it("waits as long as Retry-After says while the first request still runs", async () => {
    const { f, seen, waits } = recorder([problem(409, "request_in_progress", { "retry-after": "2" }), new Response("{}")]);
    expect((await f("http://x/a", { method: "POST", body: "1" })).status).toBe(200);
    expect(waits).toEqual([2000]);
    expect(seen).toHaveLength(2);
  });

  it("does not retry what another try cannot change", async () => {
    for (const [status, code] of [[422, "no_face"], [409, "liveness_session_used"], [403, "operation_not_allowed"], [401, "device_session_expired"]] as const) {
      const { f, seen } = recorder([problem(status, code)]);
      expect((await f("http://x/a", { method: "POST", body: "1" })).status).toBe(status);
      expect(seen).toHaveLength(1);
    }
  });

  it("gives up after its attempts with a network_error the person can act on", async () => {
    const { f, seen } = recorder([new TypeError("a"), new TypeError("b"), new TypeError("c"), new TypeError("d")]);
    const error = await f("http://x/a", { method: "POST", body: "1" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FacegateError);
    expect((error as FacegateError).code).toBe("network_error");
    expect((error as FacegateError).text("en").alternative).toBe(true);
    expect(seen).toHaveLength(4);
  });

  it("answers the last retryable answer when attempts run out", async () => {
    const { f } = recorder([problem(503, "service_unavailable"), problem(503, "service_unavailable"), problem(503, "service_unavailable"), problem(503, "service_unavailable")]);
    expect((await f("http://x/a", { method: "POST", body: "1" })).status).toBe(503);
  });
});
