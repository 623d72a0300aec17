// @vitest-environment node
import { describe, expect, it } from "vitest";

import { decodeToken, verifyToken } from "../src/token";

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const json = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));

async function signed(payload: Record<string, unknown>) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const input = `${json({ alg: "ES256", typ: "JWT", kid: "k1" })}.${json(payload)}`;
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input)),
  );
  const jwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid: "k1" };
  return { token: `${input}.${b64url(signature)}`, jwks: { keys: [jwk] } };
}

describe("the signed result", () => {
  it("decodes the claims for display", async () => {
    const { token } = await signed({ decision: "match", purpose: "checkout", liveness: { decision: "live" } });
    const decoded = decodeToken(token);
    expect(decoded.header).toMatchObject({ alg: "ES256", kid: "k1" });
    expect(decoded.payload).toMatchObject({ decision: "match", liveness: { decision: "live" } });
  });

  it("verifies with the service's keys, and a changed claim does not", async () => {
    const { token, jwks } = await signed({ decision: "no_match" });
    expect(await verifyToken(token, jwks)).toBe(true);
    const [h, , s] = token.split(".");
    const forged = `${h}.${json({ decision: "match" })}.${s}`;
    expect(await verifyToken(forged, jwks)).toBe(false);
    const other = await signed({ decision: "no_match" });
    expect(await verifyToken(token, other.jwks)).toBe(false);
  });
});
