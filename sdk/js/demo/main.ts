/** The demo checkout: notice -> consent or refusal -> liveness challenge -> verification -> the signed result;
 * a refusal (or "verify without my face" on any face screen) leads to the e-mail code. */

import {
  Camera,
  ChallengeView,
  DeviceClient,
  FacegateError,
  type Locale,
  type Notice,
  type Verification,
  decodeToken,
  guidanceText,
  livenessGuidance,
  problemGuidance,
  problemText,
  text as sdkText,
} from "../src/index";
import { button, h, noticeView } from "./ui";

const params = new URLSearchParams(location.search);
const locale: Locale = params.get("lang") === "zh-CN" ? "zh-CN" : "en";
const subject = params.get("subject") ?? undefined;
const email = params.get("email") ?? undefined;
const firstVisit = params.get("first") === "1"; // a shopper new to face verification registers first
const app = document.getElementById("app")!;
document.documentElement.lang = locale;

const T: Record<string, [string, string]> = {
  shop: ["演示商店 · 结账", "Demo shop · checkout"],
  order: ["订单", "Order"],
  agree: ["同意并使用人脸验证", "I agree: verify with my face"],
  refuse: ["不同意，改用其他方式", "I do not agree: use another way"],
  notice_title: ["付款前请确认是您本人", "Confirm it is you before paying"],
  match: ["验证通过，付款已确认", "Verified: payment approved"],
  no_match: ["验证未通过", "Not verified"],
  result: ["签名的验证结果（已解码）", "The signed result (decoded)"],
  checked: ["商家后台已用 /v1/keys 验证签名", "The shop's backend checked the signature with /v1/keys"],
  not_checked: ["签名验证失败", "The signature did not verify"],
  code_sent: ["验证码已发送至", "We sent a code to"],
  code_label: ["6 位验证码", "The 6-digit code"],
  confirm: ["确认", "Confirm"],
  register: ["登记我的人脸", "Register my face"],
  registered: ["人脸已登记，现在进行验证。", "Your face is registered. Now let's verify."],
  retry_face: ["再试一次", "Try again"],
  liveness: ["活体检测", "Liveness"],
  restart: ["重新开始", "Start over"],
  first_visit: ["第一次使用？先登记您的人脸", "First time here? Register your face first"],
};
const t = (key: string) => (locale === "zh-CN" ? T[key]![0] : T[key]![1]);
for (const node of document.querySelectorAll<HTMLElement>("[data-i18n]")) node.textContent = t(node.dataset.i18n!);

interface Minted {
  token: string;
  expires_at: string;
  verification_session: { session_id: string; methods: string[] };
}

let minted: Minted;
let client: DeviceClient;
let notice: Notice;

function screen(name: string, ...children: Array<Node | string>): HTMLElement {
  app.dataset.screen = name;
  app.replaceChildren(...children);
  return app;
}

/** The non-face way, offered on every screen that asks for the face. */
const alternativeButton = () =>
  button(sdkText("alternative", locale), () => void alternative(), { "data-fg": "alternative", class: "fg-alternative" });

function showProblem(error: unknown, again?: () => void) {
  const code = error instanceof FacegateError ? error.code : "internal_error";
  const text = problemText(code, locale);
  const guidance = problemGuidance(code).map((k) => guidanceText(k, locale));
  const actions: Node[] = [];
  if (code === "not_enrolled") actions.push(button(t("register"), () => void challenge("enrol"), { "data-fg": "register" }));
  else if (text.retry && again) actions.push(button(t("retry_face"), again, { "data-fg": "retry" }));
  actions.push(alternativeButton());
  screen(
    "problem",
    h("p", { class: "problem", "data-code": code }, text.message),
    ...(guidance.length ? [h("p", { class: "fg-guidance" }, guidance.join(" · "))] : []),
    ...actions,
  );
  console.warn("facegate problem", code, error);
}

function firstVisitQuery() {
  const query = new URLSearchParams(location.search);
  query.set("first", "1");
  return query.toString();
}

async function start() {
  const response = await fetch("/demo/backend/device-session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ subject_id: subject, email, locale }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    return showProblem(new FacegateError({ status: response.status, code: problem.code ?? "service_unavailable" }));
  }
  minted = (await response.json()) as Minted;
  client = new DeviceClient({ baseUrl: location.origin, token: minted.token });
  try {
    notice = await client.notice(locale);
  } catch (error) {
    return showProblem(error, () => void start());
  }
  screen(
    "notice",
    ...noticeView(notice, locale, t("notice_title")),
    button(t("agree"), () => void decide("granted"), { "data-fg": "agree" }),
    button(t("refuse"), () => void decide("refused"), { "data-fg": "refuse", class: "secondary" }),
    ...(firstVisit ? [] : [h("p", {}, h("a", { href: `?${firstVisitQuery()}`, "data-fg": "first-visit" }, t("first_visit")))]),
  );
}

async function decide(decision: "granted" | "refused") {
  try {
    await client.consent(notice, decision, locale);
  } catch (error) {
    return showProblem(error, () => void start());
  }
  if (decision === "refused") return alternative();
  return challenge(firstVisit ? "enrol" : "verify");
}

/** The liveness challenge, then verification (or enrolment, for a shopper with no face registered yet). */
async function challenge(kind: "verify" | "enrol") {
  let session;
  try {
    session = await client.livenessSession();
  } catch (error) {
    return showProblem(error, () => void challenge(kind));
  }
  screen("challenge");
  app.dataset.kind = kind;
  const view = new ChallengeView(app, { locale, onAlternative: () => void alternative() });
  view.showActions(session.challenge.actions);
  view.root.dataset.session = session.session_id;
  view.anotherButton.addEventListener("click", () => void challenge(kind));
  view.startButton.addEventListener("click", async () => {
    view.startButton.disabled = true;
    view.anotherButton.disabled = true;
    const camera = new Camera(view.video);
    try {
      await camera.start();
    } catch {
      screen("problem", h("p", { class: "problem", "data-code": "camera" }, sdkText("camera_denied", locale)), alternativeButton());
      return;
    }
    let burst;
    try {
      burst = await view.run(camera, session);
    } finally {
      camera.stop();
    }
    try {
      if (kind === "enrol") {
        await client.enrol(burst);
        screen("enrolled", h("p", {}, t("registered")));
        return void challenge("verify");
      }
      showVerification(await client.verify(burst));
    } catch (error) {
      showProblem(error, () => void challenge(kind));
    }
  });
}

async function showResult(token: string, headline: HTMLElement, ...extra: Node[]) {
  const decoded = decodeToken(token);
  const check = await fetch("/demo/backend/result", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ result_token: token }),
  }).then((r) => r.json() as Promise<{ valid: boolean }>);
  screen(
    "result",
    headline,
    ...extra,
    h("p", { "data-fg": "signature", "data-valid": String(check.valid) }, check.valid ? `✔ ${t("checked")}` : `✘ ${t("not_checked")}`),
    h("h3", {}, t("result")),
    h("pre", { "data-fg": "claims" }, JSON.stringify(decoded.payload, null, 2)),
    button(t("restart"), () => location.reload(), { class: "secondary" }),
  );
}

function showVerification(result: Verification) {
  const match = result.decision === "match";
  const live = typeof result.liveness === "object" ? result.liveness : undefined;
  const extra: Node[] = [];
  if (live) extra.push(h("p", { "data-fg": "liveness", "data-decision": live.decision }, `${t("liveness")}: ${live.decision}`));
  if (!match) {
    const advice = livenessGuidance(live && live.decision !== "live" ? live.reasons : ["no_frontal_frame"]);
    extra.push(h("p", { class: "fg-guidance" }, advice.map((k) => guidanceText(k, locale)).join(" · ")));
    extra.push(button(t("retry_face"), () => void challenge("verify"), { "data-fg": "retry" }), alternativeButton());
  }
  const headline = h("p", { class: match ? "match" : "no-match", "data-fg": "decision", "data-decision": result.decision }, match ? t("match") : t("no_match"));
  void showResult(result.result_token, headline, ...extra);
}

/** The non-face way: a code sent by e-mail, typed in by the person. */
async function alternative() {
  let challenge;
  try {
    challenge = await client.startAlternative(minted.verification_session.session_id, "email_otp", locale);
  } catch (error) {
    return showProblem(error, () => void alternative());
  }
  const input = h("input", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", pattern: "[0-9]{6}", "data-fg": "code" });
  const message = h("p", { class: "problem", "data-fg": "message" });
  const submit = async () => {
    try {
      const result = await client.verifyAlternative(challenge.challenge_id, input.value.trim());
      const match = result.decision === "match";
      const headline = h("p", { class: match ? "match" : "no-match", "data-fg": "decision", "data-decision": result.decision, "data-method": result.method }, match ? t("match") : t("no_match"));
      await showResult(result.result_token, headline);
    } catch (error) {
      const code = error instanceof FacegateError ? error.code : "internal_error";
      message.dataset.code = code;
      message.textContent = problemText(code, locale).message;
    }
  };
  screen(
    "alternative",
    h("p", {}, `${t("code_sent")} ${challenge.sent_to ?? ""}`),
    h("label", {}, t("code_label"), " ", input),
    button(t("confirm"), () => void submit(), { "data-fg": "confirm" }),
    message,
  );
  input.focus();
}

// The demo exam (proctoring from the candidate's device): /demo/?view=exam
if (params.get("view") === "exam") void import("./exam").then((m) => m.runExam(app, locale, params));
else void start();
