/**
 * @gatehouse/nuxt: gatehouse in a Nuxt 4 app.
 *
 * - `useGatehouse()`: the typed client of `@gatehouse/client` and its flow helpers (sign-in with a
 *   possible second factor, passkeys, tokens, …), keeping `useUser()` up to date.
 * - `useUser()`: the signed-in user (`User | null`), loaded on the server during SSR from the
 *   visitor's own cookie, so the first paint already shows them.
 * - Route middleware `auth` (signed-in only) and `guest` (signed-out only).
 * - Same-site: `baseURL` a path (`/api/auth`), proxied by this app's server to gatehouse.
 *   Cross-origin: `baseURL` gatehouse's own origin; the browser sends its cookie with
 *   `credentials: "include"` (list the app's origin in GATEHOUSE_ALLOWED_ORIGINS).
 */
import { addImports, addPlugin, addRouteMiddleware, addServerHandler, createResolver, defineNuxtModule, useLogger } from "@nuxt/kit";

export type { User, Token, NewToken, Passkey, SignInResult, GatehouseError } from "@gatehouse/client";

export interface ModuleOptions {
  /**
   * Where the browser reaches gatehouse.
   * - A path of this app (`/api/auth`, the default): same-site; this app's server proxies it to
   *   `serverBaseURL` (unless `proxy: false`, when something in front of the app routes it).
   * - An absolute URL (`https://auth.example.com`): cross-origin; the browser calls gatehouse
   *   itself with `credentials: "include"`.
   * Runtime override: `NUXT_PUBLIC_GATEHOUSE_BASE_URL`. One build serves either deployment: with an
   * absolute URL at run time the proxy (if built) answers 404 and the browser calls gatehouse itself.
   */
  baseURL: string;
  /**
   * Where this app's server reaches gatehouse: the SSR user load, and the proxy's target.
   * Defaults to `baseURL` when that is absolute; required when it is a path.
   * Runtime override: `NUXT_GATEHOUSE_SERVER_BASE_URL` (private, never sent to the browser).
   */
  serverBaseURL?: string;
  /** Serve `baseURL` (a path) as a proxy to `serverBaseURL`. Default: true when `baseURL` is a path. */
  proxy?: boolean;
  /**
   * `fetch`'s credentials in the browser. Default (unset, or "" at run time): `"include"` when
   * `baseURL` is absolute, else `"same-origin"`. Runtime override: `NUXT_PUBLIC_GATEHOUSE_CREDENTIALS`.
   */
  credentials?: RequestCredentials;
  /** Load the user on the server during SSR, from the request's cookie (default true). */
  ssr?: boolean;
  redirect?: {
    /** Where `auth` sends a signed-out visitor (with `?redirect=<the page asked for>`). Default `/sign-in`. */
    signIn?: string;
    /** Where `guest` sends a signed-in visitor, and where a sign-in returns without `redirect`. Default `/`. */
    home?: string;
  };
}

/** What the module puts in `runtimeConfig.public.gatehouse`. */
export interface GatehousePublicRuntimeConfig {
  baseURL: string;
  /** "" for the default (see `ModuleOptions.credentials`). */
  credentials: RequestCredentials | "";
  ssr: boolean;
  redirect: { signIn: string; home: string };
}

/** What the module puts in the private `runtimeConfig.gatehouse` (server only). */
export interface GatehouseRuntimeConfig {
  /** "" for `baseURL` (when that is absolute). */
  serverBaseURL: string;
  /** The path the proxy serves (`baseURL` at build time), or "" without a proxy. */
  proxyPath: string;
}

declare module "nuxt/schema" {
  interface PublicRuntimeConfig {
    gatehouse: GatehousePublicRuntimeConfig;
  }
  interface RuntimeConfig {
    gatehouse: GatehouseRuntimeConfig;
  }
}

const isAbsolute = (url: string) => /^https?:\/\//i.test(url);

export default defineNuxtModule<ModuleOptions>({
  meta: {
    name: "@gatehouse/nuxt",
    configKey: "gatehouse",
    compatibility: { nuxt: ">=4.0.0" },
  },
  defaults: {
    baseURL: "/api/auth",
    ssr: true,
    redirect: { signIn: "/sign-in", home: "/" },
  },
  setup(options, nuxt) {
    const logger = useLogger("gatehouse");
    const resolver = createResolver(import.meta.url);
    const baseURL = options.baseURL.replace(/\/+$/, "");
    const absolute = isAbsolute(baseURL);
    if (!absolute && !baseURL.startsWith("/")) {
      throw new Error(`@gatehouse/nuxt: baseURL ${JSON.stringify(options.baseURL)} is neither an http(s) URL nor a path of this app`);
    }
    const serverBaseURL = (options.serverBaseURL ?? "").replace(/\/+$/, "");
    const proxy = options.proxy ?? !absolute;
    if (proxy && absolute) {
      throw new Error("@gatehouse/nuxt: proxy needs baseURL to be a path of this app (e.g. /api/auth), not an origin");
    }
    if (!absolute && !serverBaseURL) {
      // Set at run time through NUXT_GATEHOUSE_SERVER_BASE_URL then; the plugin and the proxy say so if it is not.
      logger.warn("gatehouse.serverBaseURL is not set: set NUXT_GATEHOUSE_SERVER_BASE_URL where the app runs");
    }

    const rc = nuxt.options.runtimeConfig;
    rc.public.gatehouse = {
      baseURL,
      credentials: options.credentials ?? "",
      ssr: options.ssr ?? true,
      redirect: {
        signIn: options.redirect?.signIn ?? "/sign-in",
        home: options.redirect?.home ?? "/",
      },
    };
    rc.gatehouse = { serverBaseURL, proxyPath: proxy ? baseURL : "" };

    const runtime = resolver.resolve("./runtime");
    nuxt.options.build.transpile.push(runtime);

    addPlugin({ src: resolver.resolve("./runtime/plugin"), name: "gatehouse" });
    addImports([
      { name: "useGatehouse", from: resolver.resolve("./runtime/composables") },
      { name: "useUser", from: resolver.resolve("./runtime/composables") },
      { name: "GatehouseError", from: resolver.resolve("./runtime/errors") },
    ]);
    addRouteMiddleware({ name: "auth", path: resolver.resolve("./runtime/middleware/auth") });
    addRouteMiddleware({ name: "guest", path: resolver.resolve("./runtime/middleware/guest") });

    if (proxy) {
      // Its target is read at run time (runtimeConfig.gatehouse.serverBaseURL); its path is fixed here.
      addServerHandler({ route: `${baseURL}/**`, handler: resolver.resolve("./runtime/server/proxy") });
    }
  },
});
