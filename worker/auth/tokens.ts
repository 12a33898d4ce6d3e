/**
 * The registry's own tokens. An access token is what clients send as `Authorization: Bearer`:
 * short-lived, for one service (its audience), listing the granted scopes in Docker's `access`
 * claim. A refresh token (OAuth2 `access_type=offline`) lets a client get new access tokens
 * without the password; it names the user and a fingerprint of the user's password hash, so
 * changing the password or removing the user ends it. Each kind is refused where the other is
 * expected.
 */
import * as z from "../../core/zod.ts";
import { toBase64Url } from "../../core/encoding/base64.ts";
import type { TokenAuth } from "./config.ts";
import { signJwt, verifyJwt } from "./jwt.ts";
import type { PasswordHash } from "./password.ts";
import { ANONYMOUS, type Subject } from "./policy.ts";
import { parseScope, type Scope } from "./scope.ts";

export const ISSUER = "2dfs-edge-registry";

const accessClaims = z.object({
  iss: z.literal(ISSUER),
  use: z.literal("access"),
  sub: z.string(),
  aud: z.string(),
  exp: z.number(),
  nbf: z.number(),
  access: z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) })),
});

const refreshClaims = z.object({
  iss: z.literal(ISSUER),
  use: z.literal("refresh"),
  sub: z.string().check(z.minLength(1)),
  aud: z.string(),
  exp: z.number(),
  nbf: z.number(),
  pwd: z.string(),
});

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

export interface AccessGrant {
  subject: Subject;
  access: Scope[];
}

const now = (): number => Math.floor(Date.now() / 1000);

export async function issueAccessToken(auth: TokenAuth, service: string, grant: AccessGrant): Promise<IssuedToken> {
  const iat = now();
  const ttl = auth.config.tokenTtlSeconds;
  const token = await signJwt(await auth.signingKey, {
    iss: ISSUER,
    use: "access",
    sub: grant.subject.kind === "user" ? grant.subject.name : "",
    aud: service,
    iat,
    nbf: iat,
    exp: iat + ttl,
    jti: crypto.randomUUID(),
    access: grant.access,
  });
  return { token, expiresIn: ttl, issuedAt: new Date(iat * 1000).toISOString() };
}

/** The grant of a valid, unexpired access token for `service`; undefined for anything else. */
export async function readAccessToken(
  auth: TokenAuth,
  service: string,
  token: string,
): Promise<AccessGrant | undefined> {
  const claims = accessClaims.safeParse(await verifyJwt(await auth.signingKey, token));
  if (!claims.success || !current(claims.data, service)) return undefined;
  const { sub, access } = claims.data;
  const subject: Subject = sub === "" ? ANONYMOUS : { kind: "user", name: sub };
  // Re-parsed so that a scope this registry does not know can never match anything.
  const scopes = access.flatMap((a) => parseScope(`${a.type}:${a.name}:${a.actions.join(",")}`) ?? []);
  return { subject, access: scopes };
}

export async function issueRefreshToken(auth: TokenAuth, service: string, user: string): Promise<string> {
  const iat = now();
  return signJwt(await auth.signingKey, {
    iss: ISSUER,
    use: "refresh",
    sub: user,
    aud: service,
    iat,
    nbf: iat,
    exp: iat + auth.config.refreshTokenTtlSeconds,
    jti: crypto.randomUUID(),
    pwd: await passwordFingerprint(auth, userHash(auth, user)),
  });
}

/** The user a valid refresh token stands for, while that user and password still exist. */
export async function readRefreshToken(auth: TokenAuth, service: string, token: string): Promise<string | undefined> {
  const claims = refreshClaims.safeParse(await verifyJwt(await auth.signingKey, token));
  if (!claims.success || !current(claims.data, service)) return undefined;
  const hash = userHash(auth, claims.data.sub);
  if (!hash || (await passwordFingerprint(auth, hash)) !== claims.data.pwd) return undefined;
  return claims.data.sub;
}

function current(claims: { aud: string; exp: number; nbf: number }, service: string): boolean {
  const t = now();
  return claims.aud === service && claims.nbf <= t && t < claims.exp;
}

function userHash(auth: TokenAuth, user: string): PasswordHash | undefined {
  return Object.hasOwn(auth.config.users, user) ? auth.config.users[user]?.password : undefined;
}

/**
 * Changes whenever the stored hash changes. Keyed with the signing key, so the token (which the
 * client can read) says nothing about the hash itself.
 */
async function passwordFingerprint(auth: TokenAuth, hash: PasswordHash | undefined): Promise<string> {
  if (!hash) return "";
  const mac = await crypto.subtle.sign("HMAC", await auth.signingKey, new Uint8Array([...hash.salt, ...hash.hash]));
  return toBase64Url(new Uint8Array(mac).subarray(0, 16));
}
