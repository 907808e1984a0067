import type { components } from "./schema.js";

/**
 * What the passkey helpers need of WebAuthn. In a browser every member defaults to the
 * browser's own (`navigator.credentials`, `PublicKeyCredential.parseCreationOptionsFromJSON`,
 * `PublicKeyCredential.parseRequestOptionsFromJSON`); elsewhere (Node, tests, a native shell)
 * pass your own. The server speaks WebAuthn's JSON forms: it answers
 * `PublicKeyCredentialCreationOptionsJSON` / `…RequestOptionsJSON` and takes the credential's
 * `toJSON()`.
 */
export interface WebAuthnEnvironment {
  credentials?: PasskeyCredentialsContainer;
  parseCreationOptionsFromJSON?: (json: PasskeyOptionsJSON) => unknown;
  parseRequestOptionsFromJSON?: (json: PasskeyOptionsJSON) => unknown;
}

/** The part of `CredentialsContainer` the helpers call. */
export interface PasskeyCredentialsContainer {
  create(options: { publicKey: any; signal?: AbortSignal }): Promise<PasskeyCredential | null>;
  get(options: { publicKey: any; mediation?: string; signal?: AbortSignal }): Promise<PasskeyCredential | null>;
}

/** The part of `PublicKeyCredential` the helpers call. */
export interface PasskeyCredential {
  toJSON(): unknown;
}

/** `PasskeyOptionsView["publicKey"]`: the options JSON the server answered. */
export type PasskeyOptionsJSON = components["schemas"]["PasskeyOptionsView"]["publicKey"];

/** The environment with the browser's defaults filled in; throws a clear error for what is missing. */
export function resolveWebAuthn(env: WebAuthnEnvironment | undefined, ceremony: "create" | "get") {
  const g = globalThis as any;
  const credentials: PasskeyCredentialsContainer | undefined = env?.credentials ?? g.navigator?.credentials;
  const pkc = g.PublicKeyCredential;
  const parse: ((json: PasskeyOptionsJSON) => unknown) | undefined =
    ceremony === "create"
      ? env?.parseCreationOptionsFromJSON ?? (typeof pkc?.parseCreationOptionsFromJSON === "function" ? pkc.parseCreationOptionsFromJSON.bind(pkc) : undefined)
      : env?.parseRequestOptionsFromJSON ?? (typeof pkc?.parseRequestOptionsFromJSON === "function" ? pkc.parseRequestOptionsFromJSON.bind(pkc) : undefined);
  if (!credentials) {
    throw new TypeError("gatehouse: no WebAuthn credentials container (navigator.credentials); pass `webauthn.credentials`");
  }
  if (!parse) {
    const name = ceremony === "create" ? "parseCreationOptionsFromJSON" : "parseRequestOptionsFromJSON";
    throw new TypeError(`gatehouse: PublicKeyCredential.${name} is not available in this environment; pass \`webauthn.${name}\``);
  }
  return { credentials, parse };
}
