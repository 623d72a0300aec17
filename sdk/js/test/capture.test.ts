// @vitest-environment node
import { describe, expect, it } from "vitest";

import { base64Chars, blobToBase64, captureBurst, encodeWithinBudget, framePlan, scaledSize, toBurst } from "../src/capture";

describe("frame plan from the session's capture advice", () => {
  it("takes the service's rate, count and size limits", () => {
    const plan = framePlan({ fps: 10, frames: 30, min_frames: 8, max_frames: 40, max_burst_base64_chars: 5_000_000, max_frame_pixels: 2_073_600, mirrored: false });
    expect(plan).toMatchObject({ fps: 10, frames: 30, intervalMs: 100, maxSide: 640 });
    expect(plan.frameBudgetChars * plan.frames).toBeLessThanOrEqual(5_000_000);
    expect(plan.frameBudgetChars).toBeGreaterThan(100_000); // a 640 px JPEG fits easily
  });

  it("keeps the frame count within min/max and the rate sane", () => {
    expect(framePlan({ frames: 100, max_frames: 40 }).frames).toBe(40);
    expect(framePlan({ frames: 2, min_frames: 8 }).frames).toBe(8);
    expect(framePlan({ fps: 500 }).fps).toBe(30);
    expect(framePlan({ max_frame_pixels: 120_000 }).maxSide).toBeLessThan(640);
  });

  it("scales down, never up", () => {
    expect(scaledSize(1280, 720, 640)).toEqual([640, 360]);
    expect(scaledSize(360, 640, 640)).toEqual([360, 640]);
    expect(scaledSize(320, 240, 640)).toEqual([320, 240]);
  });
});

describe("JPEG size", () => {
  it("lowers quality, then size, until a frame fits its budget", async () => {
    const tried: Array<[number, number]> = [];
    const plan = { ...framePlan({ frames: 30, max_burst_base64_chars: 30 * 1000 }) };
    const blob = await encodeWithinBudget(async (quality, scale) => {
      tried.push([Math.round(quality * 100) / 100, Math.round(scale * 100) / 100]);
      return new Blob([new Uint8Array(Math.round(3000 * quality * scale * scale))]);
    }, plan);
    expect(base64Chars(blob.size)).toBeLessThanOrEqual(plan.frameBudgetChars);
    expect(tried[0]).toEqual([0.85, 1]);
    expect(tried.at(-1)![1]).toBeLessThan(1); // quality alone was not enough
    expect(tried.every(([q]) => q >= 0.5)).toBe(true);
  });
});

describe("burst timing", () => {
  it("takes the planned number of frames at the planned rate, stamped from the first", async () => {
    let clock = 1000;
    const plan = framePlan({ fps: 10, frames: 30 });
    const frames = await captureBurst(
      async () => {
        clock += 7; // encoding takes time; the schedule does not drift because of it
        return new Blob([new Uint8Array([0xff, 0xd8, clock % 256])]);
      },
      plan,
      undefined,
      () => clock,
      async (ms) => void (clock += ms),
    );
    expect(frames).toHaveLength(30);
    const burst = await toBurst("a".repeat(32), frames);
    expect(burst.timestamps_ms[0]).toBe(0);
    const gaps = burst.timestamps_ms.slice(1).map((t, k) => t - burst.timestamps_ms[k]!);
    expect(gaps.every((g) => Math.abs(g - 100) < 1e-6)).toBe(true);
    expect(burst.frames).toHaveLength(30);
    expect(atob(burst.frames[0]!).charCodeAt(0)).toBe(0xff);
  });

  it("encodes bytes as base64", async () => {
    expect(await blobToBase64(new Blob([new Uint8Array([1, 2, 3, 250])]))).toBe(btoa(String.fromCharCode(1, 2, 3, 250)));
  });
});
