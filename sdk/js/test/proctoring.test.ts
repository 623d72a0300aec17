import { describe, expect, it } from "vitest";

import { DeviceClient, FacegateError } from "../src/client";
import { PROCTORING_GUIDANCE, ProctoringUploader, incidentText, proctoringGuidanceText } from "../src/proctoring";

const ok = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const problem = (status: number, code: string, more: Record<string, unknown> = {}) =>
  new Response(JSON.stringify({ status, code, title: code, ...more }), { status, headers: { "content-type": "application/problem+json" } });

/** A fake service that applies batches in order, exactly once, as ProctoringService does: a batch repeated (same
 * sequence, same body) is answered from the stored answer with replayed: true; a gap is a 409 sequence_conflict. */
function fakeService(options: { loseAnswers?: number[]; downFor?: number; ended?: boolean } = {}) {
  const applied: Array<{ sequence: number; body: string }> = [];
  const requests: Array<{ method: string; url: string; key: string | null; body: string }> = [];
  let down = options.downFor ?? 0;
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const body = request.method === "GET" ? "" : await request.clone().text();
    requests.push({ method: request.method, url: request.url, key: request.headers.get("idempotency-key"), body });
    if (down > 0) {
      down--;
      throw new TypeError("network down");
    }
    const url = new URL(request.url);
    if (url.pathname.endsWith("/frames")) {
      const { sequence } = JSON.parse(body) as { sequence: number };
      const answer = (replayed: boolean) => ok({ session_id: "s1", sequence, next_sequence: sequence + 1, replayed, guidance: [], incidents: [] });
      const stored = applied.find((a) => a.sequence === sequence);
      if (stored) return stored.body === body ? answer(true) : problem(409, "sequence_conflict", { expected_sequence: applied.length });
      if (sequence !== applied.length) return problem(409, "sequence_conflict", { expected_sequence: applied.length });
      applied.push({ sequence, body });
      if (options.loseAnswers?.includes(sequence)) throw new TypeError("answer lost");
      return answer(false);
    }
    if (url.pathname.endsWith("/end")) return ok({ session_id: "s1", status: "ended", report_token: "a.b.c" });
    if (request.method === "GET") {
      return ok({ session_id: "s1", status: options.ended ? "ended" : "active", next_sequence: applied.length, incidents: [] });
    }
    return ok({ session_id: "s1", status: "active", capture: { frame_interval_s: 2 } }, 201);
  };
  const client = new DeviceClient({
    baseUrl: "http://api.test",
    token: "tok",
    fetch: fetchFn as typeof fetch,
    retry: { sleep: async () => {}, attempts: 2 },
  });
  return { client, requests, applied };
}

const frame = (ts: number) => ({ ts, image: `/9j/${ts}` });

describe("DeviceClient proctoring", () => {
  it("starts, sends and ends on the device routes with the device token and an Idempotency-Key per write", async () => {
    const { client, requests } = fakeService();
    const started = await client.startProctoring({ exam_id: "exam-1", locale: "zh-CN", liveness: { session_id: "a".repeat(32), frames: ["/9j/"], timestamps_ms: [0] } });
    expect(started.session_id).toBe("s1");
    await client.sendFrames("s1", 0, [frame(0)]);
    expect((await client.endProctoring("s1")).report_token).toBe("a.b.c");
    expect(requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      "POST /v1/device/proctoring/sessions",
      "POST /v1/device/proctoring/sessions/s1/frames",
      "POST /v1/device/proctoring/sessions/s1/end",
    ]);
    expect(JSON.parse(requests[0]!.body)).toMatchObject({ exam_id: "exam-1", locale: "zh-CN" });
    expect(JSON.parse(requests[1]!.body)).toEqual({ sequence: 0, frames: [frame(0)] });
    expect(new Set(requests.map((r) => r.key)).size).toBe(3);
  });
});

describe("ProctoringUploader", () => {
  it("numbers batches from the session's next_sequence and splits at maxFrames", async () => {
    const { client, requests, applied } = fakeService();
    const uploader = new ProctoringUploader(client, "s1", 0, 2);
    await uploader.send([frame(0), frame(2000), frame(4000)]);
    expect(applied.map((a) => a.sequence)).toEqual([0, 1]);
    expect(requests.map((r) => JSON.parse(r.body).frames.length)).toEqual([2, 1]);
    expect(uploader.nextSequence).toBe(2);
  });

  it("a batch whose answer was lost is retried as it was and answered from the stored answer, not applied twice", async () => {
    const { client, requests, applied } = fakeService({ loseAnswers: [0] });
    const uploader = new ProctoringUploader(client, "s1");
    const answer = await uploader.send([frame(0), frame(2000)]);
    // The fetch retried with the same body and key: the service recognised the batch
    expect(answer?.replayed).toBe(true);
    expect(requests).toHaveLength(2);
    expect(requests[1]!.body).toBe(requests[0]!.body);
    expect(requests[1]!.key).toBe(requests[0]!.key);
    expect(applied).toHaveLength(1);
    expect(uploader.nextSequence).toBe(1);
  });

  it("keeps a batch that could not be sent and sends it first, with the same sequence, when the network is back", async () => {
    const { client, applied } = fakeService({ downFor: 2 }); // both attempts of the first send fail
    const uploader = new ProctoringUploader(client, "s1");
    await expect(uploader.send([frame(0)])).rejects.toBeInstanceOf(FacegateError);
    expect(uploader.unanswered).toEqual([frame(0)]);
    expect(uploader.nextSequence).toBe(0);
    await uploader.send([frame(2000)]);
    expect(applied.map((a) => [a.sequence, JSON.parse(a.body).frames[0].ts])).toEqual([
      [0, 0],
      [1, 2000],
    ]);
    expect(uploader.unanswered).toBeUndefined();
  });

  it("resumes a sitting after a reload from the next_sequence the service holds", async () => {
    const { client, requests, applied } = fakeService();
    await new ProctoringUploader(client, "s1").send([frame(0), frame(2000)]); // the page before the reload
    const uploader = await ProctoringUploader.resume(client, "s1");
    expect(requests.at(-1)).toMatchObject({ method: "GET", url: "http://api.test/v1/device/proctoring/sessions/s1" });
    expect(uploader.nextSequence).toBe(1);
    await uploader.send([frame(4000)]);
    expect(applied.map((a) => a.sequence)).toEqual([0, 1]);
  });

  it("does not resume an ended sitting", async () => {
    const { client } = fakeService({ ended: true });
    const error = await ProctoringUploader.resume(client, "s1").catch((e: unknown) => e);
    expect((error as FacegateError).code).toBe("session_ended");
  });

  it("drops a batch the service refused for what it is (not resendable) and throws the problem", async () => {
    const { client } = fakeService();
    const uploader = new ProctoringUploader(client, "s1", 5); // the service expects 0
    const error = await uploader.send([frame(0)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FacegateError);
    expect((error as FacegateError).code).toBe("sequence_conflict");
    expect(uploader.unanswered).toBeUndefined();
  });
});

describe("proctoring texts", () => {
  it("shows the service's text in the locale, else the SDK's, else the code", () => {
    expect(proctoringGuidanceText({ code: "more_light", text: { en: "Server says", "zh-CN": "服务器" } }, "zh-CN")).toBe("服务器");
    expect(proctoringGuidanceText({ code: "face_the_camera" }, "en")).toBe("Please face the screen and the camera.");
    expect(proctoringGuidanceText({ code: "face_the_camera" }, "zh-CN")).toBe("请面向屏幕和摄像头。");
    expect(proctoringGuidanceText({ code: "new_code" }, "en")).toBe("new_code");
    expect(incidentText("looking_away", "zh-CN")).toBe("视线离开屏幕");
  });

  it("has zh-CN and en for every guidance code the service defines (openapi Guidance.code)", async () => {
    const { readFileSync } = await import("node:fs");
    const { resolve } = await import("node:path");
    const doc = JSON.parse(readFileSync(resolve(__dirname, "../../../layers/shared/facegate/openapi.json"), "utf8"));
    const code = doc.components.schemas.Guidance.properties.code;
    const codes: string[] = (code.anyOf ?? [code]).flatMap((c: { enum?: string[] }) => c.enum ?? []);
    expect(codes.length).toBeGreaterThan(5);
    for (const c of codes) {
      expect(PROCTORING_GUIDANCE[c]?.[0], c).toMatch(/[\u4e00-\u9fff]/);
      expect(PROCTORING_GUIDANCE[c]?.[1], c).toMatch(/[a-z]/);
    }
  });
});
