/** Guidance a person understands, computed without a face model in the browser: simple image statistics
 * of the preview (brightness, how much the picture moves) and what the service's answers say (problem codes,
 * liveness reasons). Each function returns guidance keys (see GUIDANCE in i18n.ts). */

export type GuidanceKey =
  | "face_in_oval"
  | "move_closer"
  | "move_back"
  | "more_light"
  | "less_light"
  | "one_face"
  | "hold_still"
  | "looking_good";

export interface FrameStats {
  /** Mean luma (0..255) inside the oval. */
  brightness: number;
  /** Fraction of pixels inside the oval that are blown out (luma >= 250). */
  overexposed: number;
  /** Mean absolute luma difference (0..255) to the previous sample, inside the oval; undefined for the first. */
  motion?: number;
}

export const DARK_LUMA = 60; // below: "more light" (a face in an unlit room reads 20..50)
export const BRIGHT_FRACTION = 0.25; // a quarter of the oval blown out: "less light"
export const MOTION_LUMA = 18; // mean change between two samples 200 ms apart: the head or the phone moves

/** Luma statistics of the pixels inside the centred oval (the one the UI draws), on RGBA data. `previous`
 * is the luma of the last sample (returned as `luma`), to measure motion. */
export function frameStats(
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  previous?: Float32Array,
): FrameStats & { luma: Float32Array } {
  const cx = width / 2;
  const cy = height / 2;
  const rx = width * 0.32;
  const ry = height * 0.4;
  const luma = new Float32Array(width * height);
  let sum = 0;
  let count = 0;
  let blown = 0;
  let diff = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const l = 0.299 * rgba[i * 4]! + 0.587 * rgba[i * 4 + 1]! + 0.114 * rgba[i * 4 + 2]!;
      luma[i] = l;
      const dx = (x + 0.5 - cx) / rx;
      const dy = (y + 0.5 - cy) / ry;
      if (dx * dx + dy * dy > 1) continue;
      sum += l;
      count++;
      if (l >= 250) blown++;
      if (previous && previous.length === luma.length) diff += Math.abs(l - previous[i]!);
    }
  }
  const n = Math.max(1, count);
  return {
    brightness: sum / n,
    overexposed: blown / n,
    motion: previous && previous.length === luma.length ? diff / n : undefined,
    luma,
  };
}

/** Guidance from the live preview: light first (nothing else can be judged in the dark), then stillness. */
export function previewGuidance(stats: FrameStats): GuidanceKey[] {
  const out: GuidanceKey[] = [];
  if (stats.brightness < DARK_LUMA) out.push("more_light");
  else if (stats.overexposed > BRIGHT_FRACTION) out.push("less_light");
  if (stats.motion !== undefined && stats.motion > MOTION_LUMA) out.push("hold_still");
  return out.length ? out : ["face_in_oval"];
}

/** Guidance from a refusal's problem code (an image the service could not use). */
export function problemGuidance(code: string): GuidanceKey[] {
  switch (code) {
    case "no_face":
      return ["face_in_oval", "more_light"];
    case "multiple_faces":
      return ["one_face"];
    case "low_quality":
      return ["move_closer", "more_light", "hold_still"];
    case "face_too_large":
      return ["move_back"];
    default:
      return [];
  }
}

/** Guidance from the reasons of a liveness judgement that was not `live` (retry or spoof). Spoof reasons get
 * the same plain advice as a poor capture: the page never tells an attacker which check caught them. */
export function livenessGuidance(reasons: readonly string[]): GuidanceKey[] {
  const out = new Set<GuidanceKey>();
  for (const reason of reasons) {
    if (reason === "multiple_faces") out.add("one_face");
    else if (reason === "face_lost" || reason === "track_cut") (out.add("face_in_oval"), out.add("move_back"));
    else if (reason === "no_frontal_frame" || reason === "too_few_frames") (out.add("face_in_oval"), out.add("more_light"));
    else if (reason === "face_too_small") out.add("move_closer");
    else if (reason === "challenge_not_met") out.add("face_in_oval");
    else out.add("more_light");
  }
  out.add("hold_still");
  return [...out];
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const CLOSER_BELOW = 0.28; // face width / frame width: the face engine wants a face of ~112 px or more
export const BACK_ABOVE = 0.7; // the face fills the frame: turning would take it out of the picture

/** Guidance from face boxes, where the browser itself detects faces (the Shape Detection API's FaceDetector,
 * on some phones and browsers; no model is shipped): how many faces, how large, and where. */
export function boxGuidance(faces: readonly Box[], width: number, height: number): GuidanceKey[] {
  if (faces.length === 0) return ["face_in_oval"];
  if (faces.length > 1) return ["one_face"];
  const face = faces[0]!;
  const share = face.width / width;
  if (share < CLOSER_BELOW) return ["move_closer"];
  if (share > BACK_ABOVE) return ["move_back"];
  const dx = (face.x + face.width / 2 - width / 2) / (width * 0.32);
  const dy = (face.y + face.height / 2 - height / 2) / (height * 0.4);
  return dx * dx + dy * dy > 0.5 ? ["face_in_oval"] : ["looking_good"];
}
