/** The liveness challenge: each action shown in turn for its share of the burst, with a countdown, while
 * frames are captured; before it, a "get ready" phase with guidance from the preview. */

import { Camera, type FramePlan, type TimedFrame, captureBurst, framePlan, toBurst } from "./capture";
import type { LivenessBurst, LivenessSession } from "./client";
import { type Box, type GuidanceKey, boxGuidance, frameStats, previewGuidance } from "./guidance";

interface FaceDetectorLike {
  detect(source: CanvasImageSource): Promise<Array<{ boundingBox: Box }>>;
}

/** The browser's own face detector where it has one (Shape Detection API), else undefined. */
function platformFaceDetector(): FaceDetectorLike | undefined {
  const Detector = (globalThis as { FaceDetector?: new (o: object) => FaceDetectorLike }).FaceDetector;
  try {
    return Detector ? new Detector({ fastMode: true, maxDetectedFaces: 3 }) : undefined;
  } catch {
    return undefined;
  }
}
import { type Locale, actionText, guidanceText, text } from "./i18n";

export interface Step {
  action: string;
  startMs: number;
  endMs: number;
}

export const READY_MS = 3000; // "get ready" before the first frame: face in the oval, light, hold still

/** The burst's time split evenly between the actions, in the order the service asked for them. */
export function challengePlan(actions: readonly string[], plan: FramePlan): Step[] {
  const total = plan.frames * plan.intervalMs;
  const share = total / Math.max(1, actions.length);
  return actions.map((action, k) => ({ action, startMs: k * share, endMs: (k + 1) * share }));
}

/** The step shown at `elapsedMs` into the burst, and the seconds left for it. */
export function stepAt(steps: readonly Step[], elapsedMs: number): { index: number; step: Step; leftMs: number } {
  const index = Math.max(
    0,
    Math.min(
      steps.length - 1,
      steps.findIndex((s) => elapsedMs < s.endMs),
    ),
  );
  const i = elapsedMs >= (steps.at(-1)?.endMs ?? 0) ? steps.length - 1 : index;
  const step = steps[i]!;
  return { index: i, step, leftMs: Math.max(0, step.endMs - elapsedMs) };
}

export interface ChallengeViewOptions {
  locale: Locale;
  /** Called when the person chooses the non-face way: offered on every screen that asks for the face. */
  onAlternative: () => void;
}

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  attrs: Record<string, string> = {},
  content = "",
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (content) node.textContent = content;
  return node;
}

/** The camera screen: a mirrored preview with the oval, the challenge's actions (each marked when due, with
 * its seconds), guidance, and the "verify without my face" button. */
export class ChallengeView {
  readonly root: HTMLElement;
  readonly video: HTMLVideoElement;
  private readonly guidance: HTMLElement;
  private readonly prompt: HTMLElement;
  private readonly timer: HTMLElement;
  private readonly list: HTMLOListElement;
  readonly startButton: HTMLButtonElement;
  readonly anotherButton: HTMLButtonElement;
  private readonly options: ChallengeViewOptions;

  constructor(container: HTMLElement, options: ChallengeViewOptions) {
    const doc = container.ownerDocument;
    const t = (key: string) => text(key, options.locale);
    this.options = options;
    this.root = el(doc, "section", { class: "fg-challenge", "data-fg": "challenge" });
    const stage = el(doc, "div", { class: "fg-stage" });
    this.video = el(doc, "video", { class: "fg-preview", autoplay: "", playsinline: "", muted: "" });
    stage.append(this.video, el(doc, "div", { class: "fg-oval", "aria-hidden": "true" }));
    this.prompt = el(doc, "p", { class: "fg-prompt", "data-fg": "prompt", "aria-live": "assertive" });
    this.timer = el(doc, "p", { class: "fg-timer", "data-fg": "timer" });
    this.guidance = el(doc, "p", { class: "fg-guidance", "data-fg": "guidance", "aria-live": "polite" });
    this.list = el(doc, "ol", { class: "fg-actions", "data-fg": "actions" });
    this.startButton = el(doc, "button", { type: "button", "data-fg": "start" }, t("start_camera"));
    this.anotherButton = el(doc, "button", { type: "button", "data-fg": "another", class: "fg-secondary" }, t("another_challenge"));
    const alternative = el(doc, "button", { type: "button", "data-fg": "alternative", class: "fg-alternative" }, t("alternative"));
    alternative.addEventListener("click", () => options.onAlternative());
    this.root.append(
      el(doc, "p", {}, t("challenge_intro")),
      this.list,
      stage,
      this.prompt,
      this.timer,
      this.guidance,
      this.startButton,
      this.anotherButton,
      alternative,
    );
    container.append(this.root);
  }

  /** Lists the actions the service chose (data-actions holds them, comma-separated, for automation). */
  showActions(actions: readonly string[]): void {
    this.list.replaceChildren(
      ...actions.map((a) => {
        const item = el(this.root.ownerDocument, "li", { "data-action": a }, actionText(a, this.options.locale));
        return item;
      }),
    );
    this.list.dataset.actions = actions.join(",");
  }

  showGuidance(keys: readonly GuidanceKey[]): void {
    this.guidance.textContent = keys.map((k) => guidanceText(k, this.options.locale)).join(" · ");
    this.guidance.dataset.keys = keys.join(",");
  }

  showStep(index: number, action: string | undefined, leftMs: number): void {
    const items = [...this.list.children] as HTMLElement[];
    items.forEach((item, k) => item.classList.toggle("fg-now", k === index));
    items.forEach((item, k) => item.classList.toggle("fg-done", k < index));
    this.prompt.textContent = action
      ? `${text("capturing", this.options.locale)} ${actionText(action, this.options.locale)}`
      : text("get_ready", this.options.locale);
    this.prompt.dataset.action = action ?? "";
    this.timer.textContent = `${(leftMs / 1000).toFixed(1)} ${text("seconds", this.options.locale)}`;
  }

  /** Runs the challenge on a started camera: the ready phase with guidance, then the timed actions while the
   * frames are captured. Resolves with the burst to send. */
  async run(camera: Camera, session: LivenessSession): Promise<LivenessBurst> {
    const plan = framePlan(session.capture);
    const steps = challengePlan(session.challenge.actions, plan);
    // Ready: guidance from brightness and motion, sampled 5 times a second
    const readyStart = performance.now();
    let previous: Float32Array | undefined;
    const detector = platformFaceDetector();
    while (performance.now() - readyStart < READY_MS) {
      const sample = camera.sample();
      const stats = frameStats(sample.data, sample.width, sample.height, previous);
      previous = stats.luma;
      let keys = previewGuidance(stats);
      if (detector && !keys.includes("more_light")) {
        try {
          const faces = await detector.detect(camera.video);
          const seen = boxGuidance(faces.map((f) => f.boundingBox), camera.video.videoWidth, camera.video.videoHeight);
          keys = [...seen, ...keys.filter((k) => k !== "face_in_oval" && !seen.includes(k))];
        } catch {
          // the detector is an extra: light and motion guidance still hold
        }
      }
      this.showGuidance(keys);
      this.showStep(-1, undefined, READY_MS - (performance.now() - readyStart));
      await new Promise((r) => setTimeout(r, 200));
    }
    this.root.dataset.phase = "capturing";
    const frames: TimedFrame[] = await captureBurst(
      () => camera.frame(plan),
      plan,
      (_k, elapsed) => {
        const { index, step, leftMs } = stepAt(steps, elapsed + plan.intervalMs);
        this.showStep(index, step.action, leftMs);
      },
    );
    this.root.dataset.phase = "sending";
    this.prompt.textContent = text("sending", this.options.locale);
    this.timer.textContent = "";
    return toBurst(session.session_id, frames);
  }
}
