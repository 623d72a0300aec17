/** Frame capture: the camera, un-mirrored JPEG frames at the service's suggested rate and within its size
 * limits, with the time each frame was taken. */

import type { Schemas } from "./client";

export type Capture = Schemas["Capture"];

/** How frames are sent. The preview may be shown mirrored (a selfie view); frames never are: the service
 * judges turn_left / turn_right on the un-mirrored picture (capture.mirrored is false). */
export interface FramePlan {
  fps: number;
  frames: number;
  intervalMs: number;
  /** The longer side of a frame in pixels (never upscaled). */
  maxSide: number;
  /** JPEG quality to start with (0..1). */
  quality: number;
  /** Base64 characters one frame may use, so that the whole burst stays within max_burst_base64_chars. */
  frameBudgetChars: number;
}

export const MAX_SIDE = 640; // enough for the face engine (it works on 112-192 px crops), small to send
export const QUALITY = 0.85;
export const MIN_QUALITY = 0.5;

export function framePlan(capture: Partial<Capture> = {}): FramePlan {
  const fps = Math.min(30, Math.max(2, capture.fps ?? 10));
  const maxFrames = capture.max_frames ?? 40;
  const frames = Math.min(maxFrames, Math.max(capture.min_frames ?? 8, capture.frames ?? 30));
  const budget = capture.max_burst_base64_chars ?? 5_000_000;
  const maxPixels = capture.max_frame_pixels ?? 1920 * 1080;
  // 4:3 at maxSide must stay within max_frame_pixels
  const maxSide = Math.min(MAX_SIDE, Math.floor(Math.sqrt((maxPixels * 4) / 3)));
  return {
    fps,
    frames,
    intervalMs: 1000 / fps,
    maxSide,
    quality: QUALITY,
    frameBudgetChars: Math.floor((budget * 0.95) / frames),
  };
}

/** The size to draw a width x height source at: the longer side at most maxSide. */
export function scaledSize(width: number, height: number, maxSide: number): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/** base64 characters of `bytes` bytes. */
export const base64Chars = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/** Encodes with falling quality, then a smaller size, until the frame fits its budget. */
export async function encodeWithinBudget(
  encode: (quality: number, scale: number) => Promise<Blob>,
  plan: FramePlan,
): Promise<Blob> {
  let quality = plan.quality;
  let scale = 1;
  for (;;) {
    const blob = await encode(quality, scale);
    if (base64Chars(blob.size) <= plan.frameBudgetChars) return blob;
    if (quality > MIN_QUALITY) quality = Math.max(MIN_QUALITY, quality - 0.15);
    else if (scale > 0.25) scale *= 0.75;
    else return blob; // the service answers 413 liveness_burst_too_large, mapped to a message
  }
}

export async function blobToBase64(blob: Blob): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** The front camera in a <video> element. */
export class Camera {
  readonly video: HTMLVideoElement;
  private stream: MediaStream | undefined;
  private canvas: HTMLCanvasElement;

  constructor(video: HTMLVideoElement) {
    this.video = video;
    this.canvas = video.ownerDocument.createElement("canvas");
  }

  /** Starts the camera and resolves when it shows pictures. Rejects (NotAllowedError, NotFoundError) when the
   * person or the device refuses: the caller offers the non-face alternative then. */
  async start(fps = 30): Promise<void> {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", frameRate: { ideal: fps } }, // no size: a size the camera lacks is cropped
    });
    this.video.srcObject = this.stream;
    this.video.muted = true;
    this.video.playsInline = true;
    await this.video.play();
    while (this.video.videoWidth === 0) await new Promise((r) => setTimeout(r, 20));
  }

  stop(): void {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = undefined;
    this.video.srcObject = null;
  }

  /** A small RGBA sample of the current picture (for brightness and motion). */
  sample(width = 64): { data: Uint8ClampedArray; width: number; height: number } {
    const [w, h] = scaledSize(this.video.videoWidth, this.video.videoHeight, width);
    this.canvas.width = w;
    this.canvas.height = h;
    const context = this.canvas.getContext("2d", { willReadFrequently: true })!;
    context.drawImage(this.video, 0, 0, w, h); // the source as the camera gives it: un-mirrored
    return { data: context.getImageData(0, 0, w, h).data, width: w, height: h };
  }

  /** One un-mirrored JPEG frame within the plan's size. */
  async frame(plan: FramePlan): Promise<Blob> {
    const [w, h] = scaledSize(this.video.videoWidth, this.video.videoHeight, plan.maxSide);
    return encodeWithinBudget((quality, scale) => {
      this.canvas.width = Math.round(w * scale);
      this.canvas.height = Math.round(h * scale);
      const context = this.canvas.getContext("2d")!;
      context.setTransform(1, 0, 0, 1, 0, 0); // never the preview's mirror
      context.drawImage(this.video, 0, 0, this.canvas.width, this.canvas.height);
      return new Promise<Blob>((resolve, reject) =>
        this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no frame"))), "image/jpeg", quality),
      );
    }, plan);
  }
}

export interface TimedFrame {
  blob: Blob;
  at: number; // ms, performance.now()
}

/** `plan.frames` frames at `plan.fps`, each stamped when taken; `onFrame(k, elapsedMs)` after each. A late
 * frame does not shift the next ones (the schedule is fixed from the start), so the rate stays right. */
export async function captureBurst(
  grab: () => Promise<Blob>,
  plan: FramePlan,
  onFrame?: (index: number, elapsedMs: number) => void,
  now: () => number = () => performance.now(),
  wait: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<TimedFrame[]> {
  const out: TimedFrame[] = [];
  const start = now();
  for (let k = 0; k < plan.frames; k++) {
    const due = start + k * plan.intervalMs;
    const early = due - now();
    if (early > 0) await wait(early);
    const at = now();
    out.push({ blob: await grab(), at });
    onFrame?.(k, at - start);
  }
  return out;
}

/** The burst the service takes: base64 frames and timestamps from the first frame. */
export async function toBurst(sessionId: string, frames: TimedFrame[]) {
  const t0 = frames[0]?.at ?? 0;
  return {
    session_id: sessionId,
    frames: await Promise.all(frames.map((f) => blobToBase64(f.blob))),
    timestamps_ms: frames.map((f) => Math.round((f.at - t0) * 10) / 10),
  };
}
