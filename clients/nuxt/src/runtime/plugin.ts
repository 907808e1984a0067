import { createGatehouse, GatehouseError, type Gatehouse } from "@gatehouse/client";
import { defineNuxtPlugin, useRequestHeaders, useRuntimeConfig } from "#app";
import { endpoints } from "./endpoints.js";
import { useUserLoaded, useUserState } from "./state.js";

/**
 * Makes this app's gatehouse client and loads the user.
 *
 * On the server it runs once per request (each request renders its own Nuxt app): the client it
 * makes sends gatehouse that request's own `Cookie` header and nothing else, and the user lands
 * in that request's `useState`. Nothing is kept between requests, so one visitor's session can
 * never reach another's render. In the browser the client calls `baseURL` with the configured
 * `credentials`; the user comes from the SSR payload (or is asked for when SSR did not).
 */
export default defineNuxtPlugin({
  name: "gatehouse",
  enforce: "pre",
  async setup() {
    const config = useRuntimeConfig();
    const pub = config.public.gatehouse;
    const where = endpoints(pub, import.meta.server ? config.gatehouse.serverBaseURL : undefined);
    const user = useUserState();
    const loaded = useUserLoaded();
    let gatehouse: Gatehouse;

    if (import.meta.server) {
      const base = where.serverBaseURL;
      if (!base) {
        throw new Error("@gatehouse/nuxt: no server base URL: set gatehouse.serverBaseURL in nuxt.config or NUXT_GATEHOUSE_SERVER_BASE_URL");
      }
      const { cookie } = useRequestHeaders(["cookie"]);
      gatehouse = createGatehouse({
        baseURL: base,
        // The visitor's cookie, as their browser sent it to us, on reads only. A change sent from
        // here would carry neither Origin nor Sec-Fetch-Site, so gatehouse's CSRF rule would let it
        // through: any page another site links to could then act as the visitor. Changes are the
        // browser's to make.
        fetch: (request: Request) => {
          if (request.method !== "GET" && request.method !== "HEAD") {
            return Promise.reject(
              new TypeError(`@gatehouse/nuxt: ${request.method} ${new URL(request.url).pathname} during SSR refused: the server only reads with the visitor's cookie; make changes from the browser`),
            );
          }
          if (cookie) request.headers.set("cookie", cookie);
          return globalThis.fetch(request);
        },
      });
      if (pub.ssr) {
        if (!cookie) {
          user.value = null;
          loaded.value = true;
        } else {
          try {
            user.value = await gatehouse.user();
            loaded.value = true;
          } catch (e) {
            user.value = null;
            if (e instanceof GatehouseError && e.status === 401) {
              loaded.value = true;
            } else {
              // gatehouse unreachable or failing: render signed out, and let the browser ask again.
              console.error("[@gatehouse/nuxt] could not load the user during SSR:", e);
              loaded.value = false;
            }
          }
        }
      }
    } else {
      const base = where.absolute ? where.baseURL : new URL(where.baseURL, window.location.origin).href;
      gatehouse = createGatehouse({ baseURL: base, credentials: where.credentials });
      if (!loaded.value) {
        try {
          user.value = await gatehouse.user();
        } catch (e) {
          user.value = null;
          if (!(e instanceof GatehouseError && e.status === 401)) console.error("[@gatehouse/nuxt] could not load the user:", e);
        }
        loaded.value = true;
      }
    }
    return { provide: { gatehouse } };
  },
});
