/** The demo exam (/demo/?view=exam): the exam platform's backend mints a device session (purpose exam_proctoring);
 * the candidate reads the notice, consents (or chooses a human-proctored sitting), answers a liveness challenge that
 * starts the sitting, then the page sends one camera frame every N seconds in batches and shows the candidate's
 * guidance and the incidents ongoing; "End exam" shows the signed report, decoded and checked with /v1/keys.
 * Query: lang=zh-CN|en, subject=<candidate id>, interval=<s, 2..10>, batch=<frames a batch>. */

import {
  Camera,
  ChallengeView,
  DeviceClient,
  FacegateError,
  type Locale,
  type Notice,
  type ProctoringFrame,
  type ProctoringFrames,
  ProctoringUploader,
  type ProctoringSession,
  blobToBase64,
  decodeToken,
  framePlan,
  incidentText,
  proctoringGuidanceText,
  problemText,
  text as sdkText,
} from "../src/index";
import { button, h, noticeView } from "./ui";

const T: Record<string, [string, string]> = {
  title: ["演示考试 · 在线监考", "Demo exam · online proctoring"],
  notice_title: ["本场考试使用人脸监考", "This exam is proctored with your face"],
  agree: ["同意并开始身份确认", "I agree: confirm it is me"],
  refuse: ["不同意，改为人工监考", "I do not agree: a human proctor instead"],
  human: ["已为您安排人工监考，不处理任何人脸数据。", "A human-proctored sitting was arranged: no face data is processed."],
  confirmed: ["身份已确认，监考会话已开始。", "It is you: the proctored sitting has started."],
  begin: ["开始考试", "Begin the exam"],
  end: ["结束考试", "End exam"],
  every: ["每隔几秒拍摄一帧画面，画面不会被保存。", "One picture every few seconds; pictures are never stored."],
  batches: ["已发送批次", "Batches sent"],
  incidents_now: ["当前情况", "Now"],
  none: ["无", "None"],
  guidance: ["提示", "Tips"],
  report: ["签名的监考报告（已解码）", "The signed proctoring report (decoded)"],
  checked: ["考试平台已用 /v1/keys 验证签名", "The exam platform checked the signature with /v1/keys"],
  not_checked: ["签名验证失败", "The signature did not verify"],
  for_review: ["待人工复核的事件", "Incidents for a person to review"],
  restart: ["重新开始", "Start over"],
};

let locale: Locale = "en";
let app: HTMLElement;
const t = (key: string) => (locale === "zh-CN" ? T[key]![0] : T[key]![1]);

function screen(name: string, ...children: Array<Node | string>): HTMLElement {
  app.dataset.screen = name;
  app.replaceChildren(...children);
  return app;
}

function showProblem(error: unknown, again?: () => void) {
  const code = error instanceof FacegateError ? error.code : "internal_error";
  const text = problemText(code, locale);
  const actions: Node[] = [];
  if (text.retry && again) actions.push(button(sdkText("try_again", locale), again, { "data-fg": "retry" }));
  actions.push(button(t("refuse"), () => void humanProctor(), { "data-fg": "alternative", class: "secondary" }));
  screen("problem", h("p", { class: "problem", "data-code": code }, text.message), ...actions);
  console.warn("facegate problem", code, error);
}

let client: DeviceClient;
let notice: Notice;
let examId = "demo-exam-2026";

/** The sitting in progress in this tab (sessionStorage: gone with the tab), so that a reload goes on with it. */
const SITTING_KEY = "facegate-demo-sitting";

export async function runExam(root: HTMLElement, lang: Locale, params: URLSearchParams): Promise<void> {
  app = root;
  locale = lang;
  document.title = t("title");
  const heading = document.querySelector("header h1");
  if (heading) heading.textContent = t("title");
  // The exam platform's backend mints a device session for the signed-in candidate; an exam outlasts one (10
  // minutes at most), so the client asks the backend again a minute before each token expires.
  const mintExamSession = async (): Promise<{ token: string; exam_id: string }> => {
    const response = await fetch("/demo/backend/exam-session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ subject_id: params.get("subject") ?? undefined, locale }),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new FacegateError({ status: response.status, code: problem.code ?? "service_unavailable" });
    }
    return (await response.json()) as { token: string; exam_id: string };
  };
  let minted: { token: string; exam_id: string };
  try {
    minted = await mintExamSession();
  } catch (error) {
    return showProblem(error);
  }
  examId = minted.exam_id;
  document.querySelector("header .order")?.replaceChildren(examId);
  let first: string | undefined = minted.token;
  client = new DeviceClient({
    baseUrl: location.origin,
    token: async () => {
      const token = first ?? (await mintExamSession()).token;
      first = undefined;
      return token;
    },
  });
  const interval = Math.min(10, Math.max(2, Number(params.get("interval") ?? 2) || 2));
  const batch = Math.min(30, Math.max(1, Number(params.get("batch") ?? 3) || 3));
  // A reload during the sitting (the page keeps the sitting's id for the tab): go on from where the service is
  const resumeId = sessionStorage.getItem(SITTING_KEY);
  if (resumeId) {
    try {
      const uploader = await ProctoringUploader.resume(client, resumeId);
      return void exam(resumeId, interval, batch, uploader);
    } catch {
      sessionStorage.removeItem(SITTING_KEY); // ended, or not this candidate's: start afresh
    }
  }
  try {
    notice = await client.notice(locale);
  } catch (error) {
    return showProblem(error, () => void runExam(root, lang, params));
  }
  screen(
    "notice",
    ...noticeView(notice, locale, t("notice_title")),
    button(t("agree"), () => void agree(interval, batch), { "data-fg": "agree" }),
    button(t("refuse"), () => void refuse(), { "data-fg": "refuse", class: "secondary" }),
  );
}

async function agree(interval: number, batch: number) {
  try {
    await client.consent(notice, "granted", locale);
  } catch (error) {
    return showProblem(error, () => void agree(interval, batch));
  }
  return challenge(interval, batch);
}

async function refuse() {
  try {
    await client.consent(notice, "refused", locale);
  } catch (error) {
    return showProblem(error);
  }
  return humanProctor();
}

/** The sitting without face processing (no consent needed): recorded as such. */
async function humanProctor() {
  try {
    const session = await client.startProctoring({ exam_id: examId, mode: "human_proctor", locale });
    screen("alternative", h("p", { "data-fg": "mode", "data-mode": session.mode }, t("human")));
  } catch (error) {
    showProblem(error);
  }
}

/** The liveness challenge; its burst starts the sitting (consent, liveness, a match against the enrolment). */
async function challenge(interval: number, batch: number) {
  let live;
  try {
    live = await client.livenessSession();
  } catch (error) {
    return showProblem(error, () => void challenge(interval, batch));
  }
  screen("challenge");
  app.dataset.kind = "exam";
  const view = new ChallengeView(app, { locale, onAlternative: () => void humanProctor() });
  view.showActions(live.challenge.actions);
  view.root.dataset.session = live.session_id;
  view.anotherButton.addEventListener("click", () => void challenge(interval, batch));
  view.startButton.addEventListener("click", async () => {
    view.startButton.disabled = true;
    view.anotherButton.disabled = true;
    const camera = new Camera(view.video);
    try {
      await camera.start();
    } catch {
      screen("problem", h("p", { class: "problem", "data-code": "camera" }, sdkText("camera_denied", locale)));
      return;
    }
    let burst;
    try {
      burst = await view.run(camera, live);
    } finally {
      camera.stop();
    }
    let session: ProctoringSession;
    try {
      session = await client.startProctoring({ exam_id: examId, liveness: burst, locale, frame_interval_s: interval });
    } catch (error) {
      return showProblem(error, () => void challenge(interval, batch));
    }
    sessionStorage.setItem(SITTING_KEY, session.session_id);
    screen(
      "started",
      h("p", { class: "match", "data-fg": "started", "data-session": session.session_id, "data-liveness": session.liveness?.decision ?? "" }, t("confirmed")),
      h("p", {}, t("every")),
      button(t("begin"), () => void exam(session.session_id, session.capture?.frame_interval_s ?? interval, batch), { "data-fg": "begin" }),
    );
  });
}

/** The exam: one frame every `intervalS` seconds, sent `batch` at a time; guidance and incidents as answered.
 * `resumed`: the uploader of a sitting that a reload interrupted. */
async function exam(sessionId: string, intervalS: number, batch: number, resumed?: ProctoringUploader) {
  const video = h("video", { class: "fg-preview", autoplay: "", playsinline: "", muted: "" });
  const stage = h("div", { class: "fg-stage fg-exam-stage" }, video);
  const sent = h("span", { "data-fg": "batches", "data-applied": "0", "data-frames": "0" }, "0");
  const guidance = h("ul", { class: "fg-guidance", "data-fg": "guidance", "aria-live": "polite" });
  const incidents = h("ul", { "data-fg": "incidents", "data-open": "" }, h("li", {}, t("none")));
  const problem = h("p", { class: "problem", "data-fg": "send-problem" });
  const endButton = button(t("end"), () => void end(), { "data-fg": "end" });
  screen(
    "exam",
    stage,
    h("p", {}, `${t("batches")}: `, sent),
    h("h3", {}, t("guidance")),
    guidance,
    h("h3", {}, t("incidents_now")),
    incidents,
    problem,
    endButton,
  );
  const camera = new Camera(video);
  try {
    await camera.start(5);
  } catch {
    screen("problem", h("p", { class: "problem", "data-code": "camera" }, sdkText("camera_denied", locale)));
    return;
  }
  const uploader = resumed ?? new ProctoringUploader(client, sessionId, 0);
  const plan = { ...framePlan({ frames: 1 }), frameBudgetChars: Math.floor((250_000 * 4) / 3) - 1024 };
  const intervalMs = intervalS * 1000;
  let frames: ProctoringFrame[] = [];
  let applied = 0;
  let total = 0;
  let busy: Promise<void> = Promise.resolve();

  const show = (answer: ProctoringFrames) => {
    applied = answer.next_sequence;
    total = answer.state.frames;
    sent.textContent = `${applied} (${total})`;
    sent.dataset.applied = String(applied);
    sent.dataset.frames = String(total);
    guidance.replaceChildren(
      ...answer.guidance.map((g) => h("li", { "data-code": g.code }, proctoringGuidanceText(g, locale))),
    );
    const open = answer.state.open_incidents;
    incidents.dataset.open = open.join(",");
    incidents.replaceChildren(...(open.length ? open.map((type) => h("li", { "data-type": type }, incidentText(type, locale))) : [h("li", {}, t("none"))]));
  };

  const flush = (rest: ProctoringFrame[]) =>
    (busy = busy.then(async () => {
      try {
        const answer = await uploader.send(rest);
        problem.textContent = "";
        if (answer) show(answer);
      } catch (error) {
        // A batch that could not be sent stays with the uploader and goes first next time (same sequence)
        const code = error instanceof FacegateError ? error.code : "internal_error";
        problem.dataset.code = code;
        problem.textContent = problemText(code, locale).message;
      }
    }));

  const tick = async () => {
    const blob = await camera.frame(plan);
    // Wall-clock ms: times must keep increasing across a reload, which restarts performance.now()
    frames.push({ ts: Date.now(), image: await blobToBase64(blob) });
    if (frames.length >= batch) {
      const full = frames;
      frames = [];
      void flush(full);
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  void tick();

  async function end() {
    endButton.disabled = true;
    clearInterval(timer);
    camera.stop();
    await flush(frames.splice(0));
    let report;
    try {
      report = await client.endProctoring(sessionId);
    } catch (error) {
      return showProblem(error);
    }
    sessionStorage.removeItem(SITTING_KEY);
    const token = report.report_token ?? "";
    const check = await fetch("/demo/backend/result", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ result_token: token }),
    }).then((r) => r.json() as Promise<{ valid: boolean }>);
    const claims = decodeToken(token).payload as { summary?: { incidents_for_review?: number } };
    screen(
      "report",
      h("p", { "data-fg": "report-status", "data-status": report.status }, `${report.exam_id} · ${report.status}`),
      h("p", { "data-fg": "for-review" }, `${t("for_review")}: ${claims.summary?.incidents_for_review ?? 0}`),
      h("p", { "data-fg": "signature", "data-valid": String(check.valid) }, check.valid ? `✔ ${t("checked")}` : `✘ ${t("not_checked")}`),
      h("p", { class: "fg-statement" }, report.statement ?? ""),
      h("h3", {}, t("report")),
      h("pre", { "data-fg": "claims" }, JSON.stringify(claims, null, 2)),
      button(t("restart"), () => location.reload(), { class: "secondary" }),
    );
  }
}
