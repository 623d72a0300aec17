import { describe, expect, it } from "vitest";

import { framePlan } from "../src/capture";
import { ChallengeView, challengePlan, stepAt } from "../src/challenge";

describe("challenge timing", () => {
  const plan = framePlan({ fps: 10, frames: 30 });

  it("gives each action its share of the burst, in the service's order", () => {
    expect(challengePlan(["turn_left", "turn_right"], plan)).toEqual([
      { action: "turn_left", startMs: 0, endMs: 1500 },
      { action: "turn_right", startMs: 1500, endMs: 3000 },
    ]);
  });

  it("shows the due action and its time left", () => {
    const steps = challengePlan(["blink", "open_mouth"], plan);
    expect(stepAt(steps, 0)).toMatchObject({ index: 0, leftMs: 1500 });
    expect(stepAt(steps, 1499).step.action).toBe("blink");
    expect(stepAt(steps, 1500)).toMatchObject({ index: 1, leftMs: 1500 });
    expect(stepAt(steps, 5000)).toMatchObject({ index: 1, leftMs: 0 });
  });
});

describe("the challenge screen", () => {
  for (const [locale, turnLeft, alternative] of [
    ["en", "Turn your head to your left", "Verify without my face"],
    ["zh-CN", "向左转头", "不使用人脸，改用其他方式验证"],
  ] as const) {
    it(`lists the actions and offers the non-face way (${locale})`, () => {
      document.body.innerHTML = "";
      let chosen = 0;
      const view = new ChallengeView(document.body, { locale, onAlternative: () => chosen++ });
      view.showActions(["turn_left", "blink"]);
      const items = [...document.querySelectorAll("[data-fg=actions] li")].map((li) => li.textContent);
      expect(items[0]).toBe(turnLeft);
      expect(document.querySelector<HTMLElement>("[data-fg=actions]")!.dataset.actions).toBe("turn_left,blink");
      const button = document.querySelector<HTMLButtonElement>("[data-fg=alternative]")!;
      expect(button.textContent).toBe(alternative);
      button.click();
      expect(chosen).toBe(1);
      view.showStep(1, "blink", 1234);
      expect(document.querySelector("[data-fg=actions] li.fg-now")!.getAttribute("data-action")).toBe("blink");
      expect(document.querySelector("[data-fg=actions] li.fg-done")!.getAttribute("data-action")).toBe("turn_left");
      expect(document.querySelector("[data-fg=timer]")!.textContent).toMatch(/^1\.2 /);
    });
  }

  it("mirrors only the preview: the frame canvas is drawn without a transform", async () => {
    // The preview's mirror is CSS on the <video>; Camera.frame draws the video with an identity transform.
    const source = await import("../src/capture?raw");
    expect(String(source.default)).toContain("setTransform(1, 0, 0, 1, 0, 0)");
  });
});
