/** Every text the SDK shows a person, in zh-CN and en. Keys are stable; a tenant may override any text. */

export type Locale = "zh-CN" | "en";
export const LOCALES: readonly Locale[] = ["zh-CN", "en"];

/** What a person can do about a problem: the message, and whether to offer another try / the non-face way. */
export interface ProblemText {
  message: string;
  /** The person can try face again (a new attempt, after following the message). */
  retry: boolean;
  /** Offer the non-face alternative prominently (it is always offered, this makes it the main button). */
  alternative: boolean;
}

type ProblemTable = Record<string, [string, string, boolean, boolean]>; // code -> [zh-CN, en, retry, alternative]

/** problem+json `code` -> a message a person can act on. Codes of the API that only a tenant backend meets
 * (admin, deletion, reviews, identification) still get a message, so that nothing is ever shown raw. */
export const PROBLEMS: ProblemTable = {
  invalid_request: ["请求无效，请刷新页面后重试。", "Something in the request was not valid. Reload the page and try again.", true, false],
  malformed_json: ["请求无效，请刷新页面后重试。", "Something in the request was not valid. Reload the page and try again.", true, false],
  payload_too_large: ["照片太大，请重试。", "The pictures were too large. Please try again.", true, false],
  unsupported_content_type: ["请求无效，请刷新页面后重试。", "Something in the request was not valid. Reload the page and try again.", true, false],
  unauthorized: ["本次验证已失效，请返回商家页面重新开始。", "This verification is no longer valid. Go back to the shop and start again.", false, true],
  forbidden: ["本次验证不允许此操作，请返回商家页面重新开始。", "This step is not allowed here. Go back to the shop and start again.", false, true],
  tenant_unknown: ["商家尚未开通此服务，请使用其他验证方式。", "This shop has not set up face verification. Please use another way to verify.", false, true],
  purpose_not_found: ["商家尚未开通此服务，请使用其他验证方式。", "This shop has not set up face verification. Please use another way to verify.", false, true],
  notice_not_found: ["无法显示告知书，请使用其他验证方式。", "The notice cannot be shown. Please use another way to verify.", false, true],
  notice_outdated: ["告知书已更新，请阅读新版本后再作选择。", "The notice has changed. Please read the new version and choose again.", true, false],
  guardian_required: ["未满14周岁需监护人同意，请使用其他验证方式或请监护人协助。", "Under 14, a parent or guardian must agree. Use another way to verify, or ask them to help.", false, true],
  consent_not_found: ["您尚未同意人脸验证，请先阅读告知书。", "You have not agreed to face verification yet. Please read the notice first.", true, false],
  consent_required: ["使用人脸验证前需要您的同意，请先阅读告知书。", "Face verification needs your consent first. Please read the notice.", true, true],
  conflict: ["请稍后重试。", "Please try again in a moment.", true, false],
  idempotency_key_reused: ["请刷新页面后重试。", "Please reload the page and try again.", true, false],
  request_in_progress: ["仍在处理中，请稍候。", "Still working on it, please wait.", true, false],
  service_unavailable: ["服务暂时不可用，请稍后重试或使用其他验证方式。", "The service is busy. Try again in a moment, or use another way to verify.", true, true],
  route_not_found: ["此功能暂不可用，请使用其他验证方式。", "This is not available yet. Please use another way to verify.", false, true],
  invalid_image: ["无法读取照片，请重试。", "The picture could not be read. Please try again.", true, false],
  unsupported_media_type: ["无法读取照片，请重试。", "The picture could not be read. Please try again.", true, false],
  image_too_large: ["照片太大，请重试。", "The picture was too large. Please try again.", true, false],
  no_face: ["未检测到人脸：请将脸部置于椭圆框内，光线充足。", "No face was found: put your face inside the oval, in good light.", true, false],
  multiple_faces: ["画面中只能有一张脸，请确保只有您本人在镜头前。", "Only one face may be in the picture: make sure you are alone in front of the camera.", true, false],
  low_quality: ["画面不够清晰：请靠近一些、增加光线并保持不动。", "The picture is not clear enough: move a little closer, add light and hold still.", true, false],
  enrolment_not_found: ["未找到登记记录，请重新登记。", "No registration was found. Please register again.", true, true],
  upload_not_received: ["照片未上传成功，请重试。", "The picture did not arrive. Please try again.", true, false],
  processing_interrupted: ["处理中断，请重试。", "Processing was interrupted. Please try again.", true, false],
  not_enrolled: ["您还没有登记人脸，请先登记，或使用其他验证方式。", "You have not registered your face yet. Register first, or use another way to verify.", false, true],
  reenrolment_required: ["需要重新登记人脸，或使用其他验证方式。", "Your face needs to be registered again, or use another way to verify.", false, true],
  fallback_required: ["人脸验证暂停使用，请使用其他验证方式。", "Face verification is paused. Please use another way to verify.", false, true],
  probe_not_found: ["照片已过期，请重试。", "The picture has expired. Please try again.", true, false],
  identification_disabled: ["此功能未开通。", "This is not enabled.", false, true],
  enrolment_mismatch: ["与已登记的人脸不一致，请使用其他验证方式。", "This does not match the registered face. Please use another way to verify.", false, true],
  too_many_templates: ["登记次数已满，请联系商家或使用其他验证方式。", "No more registrations are allowed. Contact the shop, or use another way to verify.", false, true],
  key_service_unavailable: ["服务暂时不可用，请稍后重试或使用其他验证方式。", "The service is busy. Try again in a moment, or use another way to verify.", true, true],
  signing_unavailable: ["服务暂时不可用，请稍后重试或使用其他验证方式。", "The service is busy. Try again in a moment, or use another way to verify.", true, true],
  event_publish_failed: ["请稍后重试。", "Please try again in a moment.", true, false],
  deletion_not_found: ["未找到该删除请求。", "That deletion request was not found.", false, false],
  session_not_found: ["验证已失效，请返回商家页面重新开始。", "This verification is no longer valid. Go back to the shop and start again.", false, false],
  session_expired: ["验证已超时，请返回商家页面重新开始。", "This verification has timed out. Go back to the shop and start again.", false, false],
  session_used: ["本次验证已完成。", "This verification is already complete.", false, false],
  method_not_offered: ["此验证方式不可用，请选择其他方式。", "That way of verifying is not offered here. Please choose another.", false, true],
  challenge_not_found: ["验证码已失效，请重新获取。", "That code is no longer valid. Ask for a new one.", true, false],
  challenge_expired: ["验证码已过期，请重新获取。", "The code has expired. Ask for a new one.", true, false],
  challenge_locked: ["错误次数过多，请重新获取验证码。", "Too many wrong codes. Ask for a new code.", true, false],
  otp_locked: ["错误次数过多，验证码方式已暂停，请选择人工审核。", "Too many wrong codes: codes are paused for now. Choose manual review instead.", false, true],
  code_invalid: ["验证码不正确，请检查后重新输入。", "The code is not correct. Check it and type it again.", true, false],
  code_reused: ["此验证码已使用，请等待新的验证码。", "This code was already used. Wait for the next one.", true, false],
  resend_too_soon: ["验证码刚刚发送，请稍等片刻再重新获取。", "A code was sent moments ago. Wait a little before asking again.", true, false],
  rate_limited: ["操作太频繁，请稍候再试。", "Too many tries. Please wait a moment.", true, false],
  review_not_found: ["未找到人工审核。", "That manual review was not found.", false, false],
  review_pending: ["人工审核尚未完成，请稍候。", "The manual review is not decided yet. Please wait.", true, false],
  review_decided: ["人工审核已完成。", "The manual review is already decided.", false, false],
  totp_replacement_requires_proof: ["请先用其他方式验证身份。", "Please verify another way first.", false, true],
  delivery_failed: ["验证码发送失败，请重试或选择其他方式。", "The code could not be sent. Try again, or choose another way.", true, true],
  liveness_required: ["需要完成动作检测，或使用其他验证方式。", "A live check is needed: follow the actions on screen, or use another way to verify.", true, true],
  liveness_session_mismatch: ["动作检测已失效，请重新开始。", "This live check is no longer valid. Please start again.", true, false],
  liveness_session_used: ["动作检测已使用，请重新开始。", "This live check was already used. Please start again.", true, false],
  liveness_session_expired: ["动作检测超时，请重新开始。", "The live check took too long. Please start again.", true, false],
  liveness_burst_too_large: ["画面数据太大，请重试。", "Too much picture data was sent. Please try again.", true, false],
  liveness_failed: ["未通过动作检测，请重试，或使用其他验证方式。", "The live check did not pass. Try again, or use another way to verify.", true, true],
  device_session_expired: ["本次验证已超时，请返回商家页面重新开始。", "This verification has timed out. Go back to the shop and start again.", false, true],
  device_session_revoked: ["本次验证已被取消，请返回商家页面重新开始。", "This verification was cancelled. Go back to the shop and start again.", false, true],
  operation_not_allowed: ["本次验证不允许此操作，请返回商家页面重新开始。", "This step is not allowed here. Go back to the shop and start again.", false, true],
  invalid_token: ["本次验证已失效，请返回商家页面重新开始。", "This verification is no longer valid. Go back to the shop and start again.", false, true],
  // Exam proctoring: a candidate's page meets these while the exam runs.
  proctoring_session_not_found: ["找不到本场考试的监考会话，请返回考试平台重新开始。", "This exam's proctoring session was not found. Go back to the exam platform and start again.", false, true],
  session_ended: ["本场考试的监考已结束。", "Proctoring for this exam has ended.", false, false],
  proctoring_session_expired: ["监考会话已超过允许的时长，请联系考试平台。", "The proctoring session ran longer than allowed. Please contact the exam platform.", false, true],
  sequence_conflict: ["正在重新同步画面，请稍候。", "Re-syncing the pictures, please wait.", true, false],
  proctoring_batch_too_large: ["画面数据太大，请重试。", "Too much picture data was sent. Please try again.", true, false],
  timestamps_not_increasing: ["设备时间异常，请刷新页面后重试。", "The device clock looks wrong. Reload the page and try again.", true, false],
  incident_not_found: ["找不到该记录。", "That record was not found.", false, false],
  identity_not_verified: ["未能确认是本人参加考试。请重试，或选择人工监考或现场考试。", "We could not confirm it is you. Try again, or choose a human-proctored or in-person sitting.", true, true],
  // Webhooks: only a tenant backend meets these; a message keeps anything from being shown raw.
  webhook_endpoint_not_found: ["出现了问题，请联系商家。", "Something went wrong. Please contact the shop.", false, true],
  webhook_url_not_allowed: ["出现了问题，请联系商家。", "Something went wrong. Please contact the shop.", false, true],
  webhook_endpoint_limit: ["出现了问题，请联系商家。", "Something went wrong. Please contact the shop.", false, true],
  webhook_delivery_failed: ["出现了问题，请联系商家。", "Something went wrong. Please contact the shop.", false, true],
  network_error: ["网络连接中断，请检查网络后重试。", "The connection dropped. Check your network and try again.", true, true],
  internal_error: ["出现了问题，请重试或使用其他验证方式。", "Something went wrong. Try again, or use another way to verify.", true, true],
};

/** Guidance while the camera runs; `key` values are what `guidance()` returns. */
export const GUIDANCE: Record<string, [string, string]> = {
  face_in_oval: ["请将脸部置于椭圆框内", "Put your face inside the oval"],
  move_closer: ["请靠近一些", "Move a little closer"],
  move_back: ["请离远一些", "Move back a little"],
  more_light: ["请到更亮的地方，或面向窗户或灯光", "Find more light, or face a window or a lamp"],
  less_light: ["光线太强，请避开直射光", "Too bright: move away from direct light"],
  one_face: ["画面中只能有您一个人", "Only your face should be in the picture"],
  hold_still: ["请保持不动", "Hold still"],
  looking_good: ["很好，保持这个位置", "Good, stay like this"],
};

/** The challenge's actions, as shown to the person (from the person's own point of view). */
export const ACTIONS: Record<string, [string, string]> = {
  turn_left: ["向左转头", "Turn your head to your left"],
  turn_right: ["向右转头", "Turn your head to your right"],
  blink: ["眨眨眼", "Blink"],
  open_mouth: ["张开嘴", "Open your mouth"],
};

/** Other texts of the SDK's screens. */
export const TEXT: Record<string, [string, string]> = {
  alternative: ["不使用人脸，改用其他方式验证", "Verify without my face"],
  alternative_email: ["通过电子邮件验证码验证", "Verify with a code sent by e-mail"],
  start_camera: ["开启摄像头", "Start the camera"],
  another_challenge: ["换一组动作", "Give me other actions"],
  get_ready: ["准备", "Get ready"],
  challenge_intro: ["请依次完成以下动作：", "Do these, in this order:"],
  capturing: ["请做动作：", "Now:"],
  sending: ["正在验证…", "Checking…"],
  camera_denied: ["无法使用摄像头。您可以允许摄像头权限后重试，或不使用人脸验证。", "The camera cannot be used. Allow camera access and try again, or verify without your face."],
  try_again: ["重试", "Try again"],
  seconds: ["秒", "s"],
};

export function pick(pair: [string, string] | undefined, locale: Locale): string {
  if (!pair) return "";
  return locale === "zh-CN" ? pair[0] : pair[1];
}

export function text(key: string, locale: Locale): string {
  return pick(TEXT[key], locale) || key;
}

export function actionText(action: string, locale: Locale): string {
  return pick(ACTIONS[action], locale) || action;
}

export function guidanceText(key: string, locale: Locale): string {
  return pick(GUIDANCE[key], locale) || key;
}

export function problemText(code: string, locale: Locale): ProblemText {
  const row = PROBLEMS[code] ?? PROBLEMS.internal_error!;
  return { message: locale === "zh-CN" ? row[0] : row[1], retry: row[2], alternative: row[3] };
}
