/** DOM helpers both demo views use (checkout in main.ts, the exam in exam.ts). */

import type { Notice } from "../src/index";

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

/** The purpose's notice as the person reads it before choosing: its title, every section, the sensitive-data
 * statement. `label` gives each section's heading in the page's language. */
export function noticeView(notice: Notice, label: (key: string) => string): Node[] {
  const c = notice.content;
  const row = (key: string, value: string) => [h("dt", {}, label(key)), h("dd", {}, value)];
  return [
    h("h2", {}, c.title || label("notice_title")),
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
