// Plain functions, no Nuxt or Nitro import: shared by the app (plugin) and the server (proxy).

/** Whether gatehouse's base URL is another origin's (cross-origin) rather than a path of this app. */
export const isAbsoluteURL = (url: string) => /^https?:\/\//i.test(url);

/**
 * The deployment as configured at run time: where the browser calls, with which credentials, and
 * where this app's server calls (the SSR user load, the proxy).
 */
export function endpoints(pub: { baseURL: string; credentials: RequestCredentials | "" }, serverBaseURL?: string) {
  const absolute = isAbsoluteURL(pub.baseURL);
  const trim = (u: string) => u.replace(/\/+$/, "");
  return {
    absolute,
    baseURL: trim(pub.baseURL),
    credentials: (pub.credentials || (absolute ? "include" : "same-origin")) as RequestCredentials,
    serverBaseURL: trim(serverBaseURL || (absolute ? pub.baseURL : "")),
  };
}
