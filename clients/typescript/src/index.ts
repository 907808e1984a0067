/**
 * @gatehouse/client: gatehouse's HTTP API, typed from its openapi.json.
 *
 * `createGatehouse()` gives the raw, fully typed openapi-fetch client (`api`) for every route,
 * and helpers for the flows the raw API makes awkward (a sign-in that may ask for a second
 * factor, paginated token lists, WebAuthn ceremonies). Helpers throw a `GatehouseError` on any
 * non-2xx answer.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";
import { GatehouseError } from "./errors.js";
import { resolveWebAuthn, type WebAuthnEnvironment } from "./passkeys.js";

export type { components, operations, paths } from "./schema.js";
export { GatehouseError, parseRetryAfter, type ErrorBody, type ErrorDetail } from "./errors.js";
export { createCookieJar, type CookieJar } from "./cookies.js";
export type {
  PasskeyCredential,
  PasskeyCredentialsContainer,
  PasskeyOptionsJSON,
  WebAuthnEnvironment,
} from "./passkeys.js";

type Schemas = components["schemas"];
/** The public view of a user (`components["schemas"]["User"]`). */
export type User = Schemas["User"];
/** A listed personal access token (never its secret). */
export type Token = Schemas["Token"];
/** A token just minted, with its plaintext `token`, shown once. */
export type NewToken = Schemas["NewTokenView"];
export type Passkey = Schemas["PasskeyView"];
export type Enrolment = Schemas["EnrolmentView"];
export type TwoFactorChallenge = Schemas["TwoFactorChallengeView"];
export type LoginRequest = Schemas["LoginRequest"];
export type RegisterRequest = Schemas["RegisterRequest"];
export type CreateTokenRequest = Schemas["CreateTokenRequest"];
export type Verification = Schemas["VerificationView"];

/** The raw client: openapi-fetch's `Client` over gatehouse's `paths`. */
export type GatehouseApi = Client<paths>;

export interface GatehouseOptions {
  /** Where the API is, e.g. `https://auth.example.com` or `http://127.0.0.1:8080` (no trailing path). */
  baseURL: string;
  /** A `fetch` to use instead of `globalThis.fetch` (e.g. `createCookieJar().fetch` on a server). */
  fetch?: (input: Request) => Promise<Response>;
  /**
   * `fetch`'s `credentials`: `"include"` for a frontend on another origin than the API (with that
   * origin in GATEHOUSE_ALLOWED_ORIGINS), the default `"same-origin"` otherwise.
   */
  credentials?: RequestCredentials;
  /** Headers for every request, e.g. `{ authorization: "Bearer <token>" }` for a personal access token. */
  headers?: Record<string, string>;
  /** WebAuthn for the passkey helpers; defaults to the browser's. */
  webauthn?: WebAuthnEnvironment;
}

/** What `signIn` (and the other sign-ins) come to: a session, or a second factor to answer. */
export type SignInResult =
  | { kind: "signed_in"; user: User }
  | {
      kind: "two_factor";
      /** Single use, for this client, valid 5 minutes (`expiresAt`). */
      challenge: string;
      expiresAt: string;
      /** Answers with a 6-digit code from the authenticator app, or `{ recovery_code }`. */
      complete(answer: string | { code: string } | { recovery_code: string }): Promise<User>;
      /** Answers with a passkey of the same account (`POST /passkeys/options`, then the assertion). */
      completeWithPasskey(options?: { signal?: AbortSignal }): Promise<User>;
    };

/** An enrolment to confirm: the secret, its otpauth:// URI and QR code, and `confirm(code)`. */
export type PendingTwoFactor = Enrolment & {
  /** Turns two-factor on with a code from the app; resolves to the ten recovery codes, shown once. */
  confirm(code: string): Promise<string[]>;
};

export interface Gatehouse {
  /** Every route, typed: `api.GET("/sessions")`, `api.POST("/user/confirm-password", { body })`… */
  readonly api: GatehouseApi;
  register(body: RegisterRequest): Promise<User>;
  signIn(body: LoginRequest): Promise<SignInResult>;
  signOut(): Promise<void>;
  /** The signed-in user (`GET /user`). */
  user(): Promise<User>;
  /** Proves the password again (`POST /user/confirm-password`): sensitive changes need it within 15 minutes. */
  confirmPassword(password: string): Promise<void>;
  /** Opens a mailed verification link (`/account/verify-email/…` or `/email/verify/…`) as the signed-in user. */
  verifyEmail(link: string | URL): Promise<Verification>;
  createToken(body: CreateTokenRequest): Promise<NewToken>;
  /** Every token of the user, newest first, page after page (`limit` per request). */
  listTokens(options?: { limit?: number }): AsyncIterableIterator<Token>;
  revokeToken(id: string): Promise<void>;
  /** Enrols an authenticator app (needs a recent `confirmPassword`). */
  enableTwoFactor(): Promise<PendingTwoFactor>;
  confirmTwoFactor(code: string): Promise<string[]>;
  disableTwoFactor(): Promise<void>;
  /** Adds a passkey to the signed-in account (needs a recent `confirmPassword`). */
  registerPasskey(options: { name: string; signal?: AbortSignal }): Promise<Passkey>;
  /** Signs in with a passkey alone (it counts as two factors: no code is asked). */
  signInWithPasskey(options?: { remember?: boolean; mediation?: string; signal?: AbortSignal }): Promise<User>;
  listPasskeys(): Promise<Passkey[]>;
  removePasskey(id: string): Promise<void>;
}

/** The answer of an openapi-fetch call, loosely: helpers check the status themselves. */
type Answer = { data?: unknown; error?: unknown; response: Response };

async function ok(call: Promise<Answer>): Promise<{ data: any; response: Response }> {
  const { data, error, response } = await call;
  if (!response.ok) throw GatehouseError.from(response, error);
  return { data, response };
}

export function createGatehouse(options: GatehouseOptions): Gatehouse {
  const { baseURL, fetch: customFetch, credentials, headers, webauthn } = options;
  const api = createClient<paths>({
    baseUrl: baseURL.replace(/\/+$/, ""),
    ...(customFetch ? { fetch: customFetch } : {}),
    ...(credentials ? { credentials } : {}),
    ...(headers ? { headers } : {}),
  });

  const toUser = (data: Schemas["UserBody"]): User => data.user;

  const challengeResult = (view: TwoFactorChallenge): SignInResult => {
    const answer = async (body: Omit<Schemas["TwoFactorChallengeRequest"], "challenge">): Promise<User> => {
      const { data, response } = await ok(api.POST("/two-factor-challenge", { body: { challenge: view.challenge, ...body } }));
      if (response.status !== 200) {
        // 201 is a token, the answer to a challenge `/tokens/issue` began; `signIn` began a session.
        throw new GatehouseError({ status: response.status, code: "unexpected_answer", message: "gatehouse answered a token where a session was expected", body: data });
      }
      return toUser(data);
    };
    return {
      kind: "two_factor",
      challenge: view.challenge,
      expiresAt: view.expires_at,
      complete: (a) => answer(typeof a === "string" ? { code: a } : a),
      completeWithPasskey: async (o) => answer({ passkey: await assertion(o?.signal) }),
    };
  };

  /** `POST /passkeys/options`, then the authenticator's assertion as JSON. */
  const assertion = async (signal?: AbortSignal, mediation?: string): Promise<Record<string, unknown>> => {
    const { credentials: container, parse } = resolveWebAuthn(webauthn, "get");
    const { data } = await ok(api.POST("/passkeys/options"));
    const publicKey = parse(data.publicKey);
    const credential = await container.get({ publicKey, ...(mediation ? { mediation } : {}), ...(signal ? { signal } : {}) });
    if (!credential) throw new TypeError("gatehouse: the authenticator returned no credential");
    return credential.toJSON() as Record<string, unknown>;
  };

  async function* listTokens(o?: { limit?: number }): AsyncIterableIterator<Token> {
    let cursor: string | undefined;
    do {
      const query: { limit?: number; cursor?: string } = {};
      if (o?.limit !== undefined) query.limit = o.limit;
      if (cursor !== undefined) query.cursor = cursor;
      const { data } = await ok(api.GET("/tokens", { params: { query } }));
      const page = data as Schemas["TokenPage"];
      yield* page.tokens;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
  }

  const confirmTwoFactor = async (code: string): Promise<string[]> => {
    const { data } = await ok(api.POST("/user/confirmed-two-factor-authentication", { body: { code } }));
    return (data as Schemas["RecoveryCodesView"]).recovery_codes;
  };

  return {
    api,
    async register(body) {
      const { data } = await ok(api.POST("/register", { body }));
      return toUser(data);
    },
    async signIn(body) {
      const { data, response } = await ok(api.POST("/login", { body }));
      if (response.status === 202) return challengeResult(data as TwoFactorChallenge);
      return { kind: "signed_in", user: toUser(data) };
    },
    async signOut() {
      await ok(api.POST("/logout"));
    },
    async user() {
      const { data } = await ok(api.GET("/user"));
      return toUser(data);
    },
    async confirmPassword(password) {
      await ok(api.POST("/user/confirm-password", { body: { password } }));
    },
    async verifyEmail(link) {
      const url = new URL(String(link), baseURL);
      const m = /\/(?:account\/verify-email|email\/verify)\/([^/]+)\/([^/?#]+)$/.exec(url.pathname);
      const expires = url.searchParams.get("expires");
      const signature = url.searchParams.get("signature");
      if (!m || !expires || !signature) throw new TypeError(`gatehouse: not a verification link: ${String(link)}`);
      const { data } = await ok(
        api.GET("/email/verify/{id}/{hash}", {
          params: { path: { id: decodeURIComponent(m[1]!), hash: decodeURIComponent(m[2]!) }, query: { expires, signature } },
        }),
      );
      return data as Verification;
    },
    async createToken(body) {
      const { data } = await ok(api.POST("/tokens", { body }));
      return data as NewToken;
    },
    listTokens,
    async revokeToken(id) {
      await ok(api.DELETE("/tokens/{id}", { params: { path: { id } } }));
    },
    async enableTwoFactor() {
      const { data } = await ok(api.POST("/user/two-factor-authentication"));
      return { ...(data as Enrolment), confirm: confirmTwoFactor };
    },
    confirmTwoFactor,
    async disableTwoFactor() {
      await ok(api.DELETE("/user/two-factor-authentication"));
    },
    async registerPasskey({ name, signal }) {
      const { credentials: container, parse } = resolveWebAuthn(webauthn, "create");
      const { data } = await ok(api.POST("/user/passkeys/options"));
      const publicKey = parse(data.publicKey);
      const credential = await container.create({ publicKey, ...(signal ? { signal } : {}) });
      if (!credential) throw new TypeError("gatehouse: the authenticator returned no credential");
      const added = await ok(
        api.POST("/user/passkeys", { body: { name, credential: credential.toJSON() as Record<string, unknown> } }),
      );
      return added.data as Passkey;
    },
    async signInWithPasskey(o) {
      const credential = await assertion(o?.signal, o?.mediation);
      const body: Schemas["PasskeyLoginRequest"] = { credential };
      if (o?.remember !== undefined) body.remember = o.remember;
      const { data } = await ok(api.POST("/passkeys/login", { body }));
      return toUser(data);
    },
    async listPasskeys() {
      const { data } = await ok(api.GET("/user/passkeys"));
      return (data as Schemas["PasskeysView"]).passkeys;
    },
    async removePasskey(id) {
      await ok(api.DELETE("/user/passkeys/{id}", { params: { path: { id } } }));
    },
  };
}
