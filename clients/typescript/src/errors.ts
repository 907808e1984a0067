import type { components } from "./schema.js";

/** The API's error body, as openapi.json describes it: `{"error": {"code", "message", "fields"?}}`. */
export type ErrorBody = components["schemas"]["Error"];
/** `ErrorBody["error"]`. */
export type ErrorDetail = components["schemas"]["ErrorDetail"];

/**
 * A non-2xx answer of gatehouse, thrown by the client's helpers (the raw `api` client returns
 * `{ error, response }` instead, as openapi-fetch does; `GatehouseError.from` turns that into one).
 *
 * - `code`: the API's machine-readable code (`validation_failed`, `unauthenticated`, `csrf`,
 *   `too_many_requests`, `password_confirmation_required`, …); for an OAuth endpoint's error, its
 *   `error`; for a body that is neither (a proxy's page), `http_<status>`.
 * - `fields`: with `validation_failed`, each invalid field's problems; otherwise `{}`.
 * - `retryAfter`: seconds, from the `Retry-After` header (429, 503), when there is one.
 */
export class GatehouseError extends Error {
  override readonly name = "GatehouseError";
  readonly status: number;
  readonly code: string;
  readonly fields: Readonly<Record<string, string[]>>;
  readonly retryAfter: number | undefined;
  /** The parsed body (or its text when it was not JSON). */
  readonly body: unknown;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    fields?: Record<string, string[]> | null | undefined;
    retryAfter?: number | undefined;
    body?: unknown;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.fields = init.fields ?? {};
    this.retryAfter = init.retryAfter;
    this.body = init.body;
  }

  /** Builds the error of a response and its (already parsed) body. */
  static from(response: Response, body: unknown): GatehouseError {
    const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
    const detail = isObject(body) ? body["error"] : undefined;
    if (isObject(detail) && typeof detail["code"] === "string") {
      const d = detail as unknown as ErrorDetail;
      return new GatehouseError({
        status: response.status,
        code: d.code,
        message: typeof d.message === "string" ? d.message : d.code,
        fields: isObject(d.fields) ? (d.fields as Record<string, string[]>) : undefined,
        retryAfter,
        body,
      });
    }
    if (isObject(body) && typeof body["error"] === "string") {
      // OAuth's own error shape (components["schemas"]["OAuthError"]).
      const description = body["error_description"];
      return new GatehouseError({
        status: response.status,
        code: body["error"],
        message: typeof description === "string" ? description : body["error"],
        retryAfter,
        body,
      });
    }
    return new GatehouseError({
      status: response.status,
      code: `http_${response.status}`,
      message: `gatehouse answered ${response.status} ${response.statusText}`.trim(),
      retryAfter,
      body,
    });
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
