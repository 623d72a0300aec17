import { describe, expect, it } from "vitest";

import { DARK_LUMA, boxGuidance, frameStats, livenessGuidance, previewGuidance, problemGuidance } from "../src/guidance";

function image(width: number, height: number, pixel: (x: number, y: number) => number): Uint8ClampedArray {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const v = pixel(x, y);
      data.set([v, v, v, 255], i);
    }
  return data;
}

describe("guidance from the preview (no face model: brightness and motion)", () => {
  it("asks for more light in a dark picture and not in a lit one", () => {
    const dark = frameStats(image(64, 48, () => 25), 64, 48);
    expect(dark.brightness).toBeCloseTo(25, 5);
    expect(previewGuidance(dark)).toContain("more_light");
    const lit = frameStats(image(64, 48, () => 140), 64, 48);
    expect(previewGuidance(lit)).toEqual(["face_in_oval"]);
  });

  it("looks only inside the oval: a bright frame around a dark face still needs light", () => {
    const s = frameStats(image(64, 48, (x, y) => (((x - 32) / 24) ** 2 + ((y - 24) / 21) ** 2 <= 1 ? 20 : 250)), 64, 48);
    expect(s.brightness).toBeLessThan(DARK_LUMA);
    expect(previewGuidance(s)).toContain("more_light");
  });

  it("says less light when the oval is blown out", () => {
    expect(previewGuidance(frameStats(image(64, 48, () => 255), 64, 48))).toContain("less_light");
  });

  it("asks to hold still when the picture moves between samples", () => {
    const a = frameStats(image(64, 48, (x) => (x < 32 ? 60 : 200)), 64, 48);
    const moved = frameStats(image(64, 48, (x) => (x < 40 ? 60 : 200)), 64, 48, a.luma);
    expect(moved.motion).toBeGreaterThan(18);
    expect(previewGuidance(moved)).toContain("hold_still");
    const same = frameStats(image(64, 48, (x) => (x < 32 ? 60 : 200)), 64, 48, a.luma);
    expect(same.motion).toBe(0);
    expect(previewGuidance(same)).not.toContain("hold_still");
  });
});

describe("guidance from the service's answers", () => {
  it("maps problem codes", () => {
    expect(problemGuidance("no_face")).toContain("face_in_oval");
    expect(problemGuidance("multiple_faces")).toEqual(["one_face"]);
    expect(problemGuidance("low_quality")).toEqual(expect.arrayContaining(["move_closer", "more_light", "hold_still"]));
    expect(problemGuidance("code_invalid")).toEqual([]);
  });

  it("maps liveness reasons, without telling an attacker which check caught them", () => {
    expect(livenessGuidance(["multiple_faces"])).toContain("one_face");
    expect(livenessGuidance(["face_lost"])).toEqual(expect.arrayContaining(["face_in_oval", "move_back"]));
    expect(livenessGuidance(["pad_score_low"])).toEqual(["more_light", "hold_still"]);
    expect(livenessGuidance(["planar_motion"])).toEqual(livenessGuidance(["pad_score_low"]));
  });
});

describe("guidance from face boxes (where the browser detects faces itself)", () => {
  it("says where to move", () => {
    expect(boxGuidance([], 640, 480)).toEqual(["face_in_oval"]);
    const box = (x: number, y: number, w: number) => ({ x, y, width: w, height: w * 1.2 });
    expect(boxGuidance([box(100, 100, 200), box(400, 100, 150)], 640, 480)).toEqual(["one_face"]);
    expect(boxGuidance([box(290, 200, 60)], 640, 480)).toEqual(["move_closer"]);
    expect(boxGuidance([box(50, 0, 540)], 640, 480)).toEqual(["move_back"]);
    expect(boxGuidance([box(0, 0, 220)], 640, 480)).toEqual(["face_in_oval"]); // in a corner
    expect(boxGuidance([box(210, 110, 220)], 640, 480)).toEqual(["looking_good"]);
  });
});
