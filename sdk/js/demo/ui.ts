/** DOM helpers both demo views use (checkout in main.ts, the exam in exam.ts). */

import type { Locale, Notice } from "../src/index";

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

export function button(label: string, onClick: () => void, attrs: Record<string, string> = {}) {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", onClick);
  return b;
}

/** The headings of a notice's sections, zh-CN and en. */
const NOTICE_LABELS: Record<string, [string, string]> = {
  purpose: ["目的", "Purpose"],
  method: ["处理方式", "What is processed"],
  retention: ["保存期限", "How long it is kept"],
  rights: ["您的权利", "Your rights"],
  withdrawal: ["撤回同意", "Withdrawing consent"],
  alternatives: ["其他方式", "Other ways"],
  processor: ["处理者", "Processor"],
};

/** The purpose's notice as the person reads it before choosing: its title (`fallbackTitle` if it has none), every
 * section under its heading in the page's language, the sensitive-data statement. */
export function noticeView(notice: Notice, locale: Locale, fallbackTitle: string): Node[] {
  const c = notice.content;
  const label = (key: string) => NOTICE_LABELS[key]![locale === "zh-CN" ? 0 : 1];
  const row = (key: string, value: string) => [h("dt", {}, label(key)), h("dd", {}, value)];
  return [
    h("h2", {}, c.title || fallbackTitle),
    h(
      "dl",
      { class: "notice", "data-version": String(notice.version) },
      ...row("processor", `${c.processor.name} (${c.processor.contact})`),
      ...row("purpose", c.purpose),
      ...row("method", c.method),
      ...row("retention", c.retention),
      ...row("rights", c.rights.join(" ")),
      ...row("withdrawal", c.withdrawal),
      ...row("alternatives", c.alternatives_text),
    ),
    h("p", {}, c.sensitive_data_statement),
  ];
}
