/** The signed result (an ES256 JWT): decoded for display, and checked against the service's keys
 * (GET /v1/keys) with WebCrypto. The tenant's backend must check it too: a page can be tampered with. */

export interface DecodedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Uint8Array;
}

export function base64UrlDecode(part: string): Uint8Array {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
  const binary = atob(b64);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function decodeToken(token: string): DecodedToken {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  const json = (p: string) => JSON.parse(new TextDecoder().decode(base64UrlDecode(p))) as Record<string, unknown>;
  return {
    header: json(parts[0]!),
    payload: json(parts[1]!),
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: base64UrlDecode(parts[2]!),
  };
}

/** Whether the token's ES256 signature verifies with the key of its `kid` among `jwks.keys`. */
export async function verifyToken(token: string, jwks: { keys: JsonWebKey[] }): Promise<boolean> {
  const decoded = decodeToken(token);
  if (decoded.header.alg !== "ES256") return false;
  const jwk = jwks.keys.find((k) => (k as { kid?: string }).kid === decoded.header.kid) ?? jwks.keys[0];
  if (!jwk) return false;
  const { kty, crv, x, y } = jwk;
  const key = await crypto.subtle.importKey("jwk", { kty, crv, x, y }, { name: "ECDSA", namedCurve: "P-256" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    decoded.signature as BufferSource,
    new TextEncoder().encode(decoded.signingInput),
  );
}
