import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { describe, expect, it } from "vitest";

import { FacegateError } from "../src/http";
import { GUIDANCE, LOCALES, PROBLEMS, TEXT, ACTIONS, problemText } from "../src/i18n";

const REPO = resolve(__dirname, "../../..");

/** Every `code` the service can answer: the domain errors (facegate/core/errors.py) and the device-session
 * codes of the contract. */
function serviceCodes(): string[] {
  const source = readFileSync(resolve(REPO, "layers/shared/facegate/core/errors.py"), "utf8");
  const codes = new Set<string>();
  for (const m of source.matchAll(/status, code, title = \(?\s*\d+,\s*"([a-z_]+)"/g)) codes.add(m[1]!);
  return [...codes];
}

describe("problem+json codes -> messages a person can act on", () => {
  it("finds the service's codes", () => {
    const codes = serviceCodes();
    expect(codes.length).toBeGreaterThan(50);
    expect(codes).toContain("liveness_failed");
  });

  it("has a message in zh-CN and in en for every code the service answers", () => {
    const missing = serviceCodes().filter((c) => !(c in PROBLEMS));
    expect(missing).toEqual([]);
    for (const code of [...serviceCodes(), "device_session_expired", "device_session_revoked", "operation_not_allowed", "invalid_token"]) {
      const zh = problemText(code, "zh-CN").message;
      const en = problemText(code, "en").message;
      expect(zh, code).toMatch(/[\u4e00-\u9fff]/); // Chinese text
      expect(en, code).toMatch(/^[A-Z]/);
      expect(en, code).not.toMatch(/[\u4e00-\u9fff]/);
      expect(en, code).not.toContain("_"); // never a raw code shown to a person
    }
  });

  it("offers the non-face way where face cannot go on", () => {
    for (const code of ["not_enrolled", "fallback_required", "liveness_failed", "consent_required", "device_session_expired"]) {
      expect(problemText(code, "en").alternative, code).toBe(true);
    }
    expect(problemText("code_invalid", "en")).toMatchObject({ retry: true, alternative: false });
  });

  it("maps an unknown code to a generic message, never to the raw code", () => {
    expect(problemText("something_new", "en").message).toBe(PROBLEMS.internal_error![1]);
    const error = new FacegateError({ status: 422, code: "no_face", detail: "x" });
    expect(error.text("zh-CN").message).toContain("椭圆");
    expect(error.text("en").message).toContain("oval");
  });

  it("has every screen text, action and guidance in both locales", () => {
    for (const table of [GUIDANCE, TEXT, ACTIONS]) {
      for (const [key, pair] of Object.entries(table)) {
        expect(pair[0], key).toMatch(/[\u4e00-\u9fff]/);
        expect(pair[1], key).toMatch(/^[A-Za-z0-9]/);
        expect(pair[1], key).not.toMatch(/[\u4e00-\u9fff]/);
      }
    }
    expect(LOCALES).toEqual(["zh-CN", "en"]);
  });
});
