// @vitest-environment node
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { expect, it } from "vitest";

const ROOT = resolve(__dirname, "..");

it("src/openapi.d.ts is generated from the current OpenAPI document (else: npm run generate)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fg-openapi-"));
  try {
    const out = join(dir, "openapi.d.ts");
    execFileSync(
      process.execPath,
      [join(ROOT, "node_modules/openapi-typescript/bin/cli.js"), "../../layers/shared/facegate/openapi.json", "-o", out],
      { cwd: ROOT, stdio: "pipe" },
    );
    expect(readFileSync(join(ROOT, "src/openapi.d.ts"), "utf8")).toBe(readFileSync(out, "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
