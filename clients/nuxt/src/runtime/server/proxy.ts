import { createError, defineEventHandler, getRequestHeader, getRequestIP, getRequestURL, proxyRequest } from "h3";
import { useRuntimeConfig } from "nitropack/runtime";
import { endpoints } from "../endpoints.js";

/**
 * Same-site deployment: `<baseURL>/**` of this app, forwarded to gatehouse (`serverBaseURL`) as
 * the browser sent it (method, body, its Cookie, Origin and Sec-Fetch-Site, which gatehouse's
 * CSRF rule reads, and X-Forwarded-For with the browser's address appended), and gatehouse's
 * answer (Set-Cookie included) returned as is. The browser
 * only ever talks to this origin, so the session cookie is this site's.
 */
export default defineEventHandler((event) => {
  const config = useRuntimeConfig(event);
  const { proxyPath } = config.gatehouse;
  const { absolute, serverBaseURL } = endpoints(config.public.gatehouse, config.gatehouse.serverBaseURL);
  // Deployed cross-origin (an absolute baseURL at run time): the browser calls gatehouse itself.
  if (absolute || !proxyPath) throw createError({ statusCode: 404, statusMessage: "Not Found" });
  if (!serverBaseURL) {
    throw createError({ statusCode: 502, statusMessage: "gatehouse proxy: no serverBaseURL (NUXT_GATEHOUSE_SERVER_BASE_URL)" });
  }
  const url = getRequestURL(event);
  if (!url.pathname.startsWith(proxyPath + "/")) {
    throw createError({ statusCode: 404, statusMessage: "Not Found" });
  }
  // The address the browser connected from, appended to X-Forwarded-For: gatehouse believes the
  // header only from a proxy listed in its GATEHOUSE_TRUSTED_PROXIES (this server's address), and
  // then takes its rightmost entry that is no trusted proxy: what a client wrote itself is to the
  // left and never taken. Without it every visitor is this server to gatehouse's per-client limits.
  const socket = getRequestIP(event);
  const prior = getRequestHeader(event, "x-forwarded-for");
  const forwarded = [prior, socket].filter((v): v is string => Boolean(v)).join(", ");
  const headers = forwarded ? { "x-forwarded-for": forwarded } : undefined;
  return proxyRequest(event, serverBaseURL + url.pathname.slice(proxyPath.length) + url.search, { headers });
});
