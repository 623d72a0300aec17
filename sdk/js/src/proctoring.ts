/** Exam proctoring from the candidate's device: frames sent in numbered batches, exactly once, and what to show
 * the candidate (the service's guidance codes and the incidents ongoing). Frames are never stored by facegate. */

import { type DeviceClient, type ProctoringFrame, type ProctoringFrames } from "./client";
import { FacegateError } from "./http";
import { type Locale, pick } from "./i18n";

/** The service's proctoring guidance codes (FramesResponse.guidance[].code), zh-CN and en. The service sends its
 * own texts with each code; these are used when it does not (or for a code it sent without this locale). */
export const PROCTORING_GUIDANCE: Record<string, [string, string]> = {
  more_light: ["您的面部不够清晰。请在您前方增加光源（如台灯或面向窗户）。", "Your face is hard to see. Add light in front of you (a lamp or a window facing you)."],
  move_closer: ["请稍微靠近摄像头。", "Move a little closer to the camera."],
  move_back: ["请稍微远离摄像头。", "Move a little back from the camera."],
  face_the_camera: ["请面向屏幕和摄像头。", "Please face the screen and the camera."],
  only_one_face: ["摄像头画面中应只有您一人。", "Only you should be in view of the camera."],
  uncover_camera: ["摄像头似乎被遮挡或画面过暗。请移开遮挡物并检查光线。", "The camera seems covered or very dark. Uncover it and check the light."],
  centre_your_face: ["请将面部保持在摄像头画面中央。", "Keep your face in the middle of the camera picture."],
};

/** Incident types as the candidate sees them (neutral: an incident is for a person to review, not a verdict). */
export const INCIDENTS: Record<string, [string, string]> = {
  face_absent: ["画面中没有人脸", "No face in view"],
  multiple_faces: ["画面中有多张人脸", "More than one face in view"],
  different_person: ["画面中的人可能不是考生本人", "The person in view may not be the candidate"],
  looking_away: ["视线离开屏幕", "Looking away from the screen"],
  camera_obstructed_or_dark: ["摄像头被遮挡或画面过暗", "Camera covered or too dark"],
  presentation_attack: ["画面可能是照片或屏幕", "The picture may be a photo or a screen"],
};

export interface GuidanceItem {
  code: string;
  text?: Record<string, string>;
}

/** What to tell the candidate for one guidance item: the service's text in `locale`, else ours, else the code. */
export function proctoringGuidanceText(item: GuidanceItem, locale: Locale): string {
  return item.text?.[locale] || pick(PROCTORING_GUIDANCE[item.code], locale) || item.code;
}

export function incidentText(type: string, locale: Locale): string {
  return pick(INCIDENTS[type], locale) || type;
}

/** At most this many frames a batch (the service's default batch; it takes up to 30). */
export const MAX_BATCH_FRAMES = 10;

/** Whether a failed send may be sent again as it was (the batch may not have arrived, or its answer was lost). */
export function resendable(error: unknown): boolean {
  if (!(error instanceof FacegateError)) return true;
  return error.status === 0 || error.status >= 500 || error.status === 429 || error.code === "request_in_progress";
}

/** Sends a sitting's frames in numbered batches. A batch whose answer never came is kept and sent again, the same
 * sequence with the same frames and times, before anything newer: the service answers it from its stored answer
 * if it had been applied (`replayed`), so no frame is counted twice and none is lost. */
export class ProctoringUploader {
  readonly sessionId: string;
  private sequence: number;
  private pending: ProctoringFrame[] | undefined;
  private readonly client: DeviceClient;
  private readonly queue: ProctoringFrame[] = [];
  private readonly maxFrames: number;

  constructor(client: DeviceClient, sessionId: string, nextSequence = 0, maxFrames = MAX_BATCH_FRAMES) {
    this.client = client;
    this.maxFrames = maxFrames;
    this.sessionId = sessionId;
    this.sequence = nextSequence;
  }

  /** An uploader for a sitting started earlier (a reload of the page): it reads the sitting's next_sequence from
   * the service. Frames that were captured but never answered before the reload are gone; the service counts only
   * what it applied. Frame times must keep increasing across the reload: take them from `Date.now()`, not
   * `performance.now()` (which restarts with the page). Throws FacegateError `session_ended` if the sitting has
   * ended. */
  static async resume(client: DeviceClient, sessionId: string, maxFrames = MAX_BATCH_FRAMES): Promise<ProctoringUploader> {
    const sitting = await client.proctoringSession(sessionId);
    if (sitting.status !== "active") {
      throw new FacegateError({ status: 409, code: "session_ended", title: "The sitting has ended" });
    }
    return new ProctoringUploader(client, sessionId, sitting.next_sequence, maxFrames);
  }

  get nextSequence(): number {
    return this.sequence;
  }

  /** The batch awaiting an answer, if the last send failed. */
  get unanswered(): readonly ProctoringFrame[] | undefined {
    return this.pending;
  }

  /** Frames waiting for a batch (given to `send` while an earlier batch could not be sent). */
  get queued(): number {
    return this.queue.length;
  }

  /** Sends the unanswered batch first (if any), then the queued frames and `frames` in batches of at most
   * `maxFrames`; answers the last answer. A send that fails with a resendable error keeps its batch (and the frames
   * after it) for the next call and throws. */
  async send(frames: ProctoringFrame[] = []): Promise<ProctoringFrames | undefined> {
    this.queue.push(...frames);
    let answer: ProctoringFrames | undefined;
    if (this.pending) answer = await this.flush(this.pending);
    while (this.queue.length) answer = await this.flush(this.queue.splice(0, this.maxFrames));
    return answer;
  }

  private async flush(frames: ProctoringFrame[]): Promise<ProctoringFrames> {
    this.pending = frames;
    try {
      const answer = await this.client.sendFrames(this.sessionId, this.sequence, frames);
      this.sequence = answer.next_sequence;
      this.pending = undefined;
      return answer;
    } catch (error) {
      if (!resendable(error)) this.pending = undefined;
      throw error;
    }
  }
}
