/**
 * A tiny cookie jar for a server-side caller (Node, SSR, tests): a `fetch` that keeps the cookies
 * gatehouse sets (the session, the device cookie, the flows' binding cookies) and sends them back.
 *
 * It serves ONE gatehouse origin: it ignores `Domain` and `Path` (every gatehouse cookie is
 * `Path=/`, host-only) and sends `Secure` cookies over plain http too, so that it works against
 * `gatehouse serve` on http://127.0.0.1. It honours `Max-Age` and `Expires` (a cleared cookie
 * leaves the jar). Browsers keep cookies themselves: use `credentials` there instead.
 */
export interface CookieJar {
  /** A `fetch` that sends the jar's cookies and stores what the answer sets. */
  readonly fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** The current value of a cookie, if the jar holds it. */
  get(name: string): string | undefined;
  /** The cookies held, name to value. */
  all(): Record<string, string>;
  /** Stores one `Set-Cookie` header value. */
  store(setCookie: string): void;
  /** Forgets every cookie. */
  clear(): void;
}

export function createCookieJar(baseFetch: typeof fetch = globalThis.fetch): CookieJar {
  const jar = new Map<string, { value: string; expires: number | undefined }>();

  const live = (): Map<string, string> => {
    const now = Date.now();
    const out = new Map<string, string>();
    for (const [name, c] of jar) {
      if (c.expires !== undefined && c.expires <= now) jar.delete(name);
      else out.set(name, c.value);
    }
    return out;
  };

  const store = (header: string): void => {
    const [pair, ...attrs] = header.split(";");
    const eq = pair?.indexOf("=") ?? -1;
    if (!pair || eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let expires: number | undefined;
    for (const attr of attrs) {
      const [k = "", ...rest] = attr.split("=");
      const key = k.trim().toLowerCase();
      const v = rest.join("=").trim();
      if (key === "max-age" && /^-?\d+$/.test(v)) {
        expires = Date.now() + Number(v) * 1000; // Max-Age wins over Expires (RFC 6265 §5.3)
        break;
      }
      if (key === "expires") {
        const at = Date.parse(v);
        if (!Number.isNaN(at)) expires = at;
      }
    }
    if (expires !== undefined && expires <= Date.now()) jar.delete(name);
    else jar.set(name, { value, expires });
  };

  const jarFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const cookies = live();
    if (cookies.size > 0) {
      request.headers.set("cookie", [...cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const response = await baseFetch(request);
    for (const header of response.headers.getSetCookie()) store(header);
    return response;
  };

  return {
    fetch: jarFetch,
    get: (name) => live().get(name),
    all: () => Object.fromEntries(live()),
    store,
    clear: () => jar.clear(),
  };
}
