// The example app: gatehouse behind this app's own origin (same-site), by default.
//
//   gatehouse: { baseURL: "/api/auth" }   the browser calls /api/auth/…, which this app's server
//                                         proxies to serverBaseURL (a `gatehouse serve`, or the API)
//
// The same build runs cross-origin too, set at run time (see README.md):
//   NUXT_PUBLIC_GATEHOUSE_BASE_URL=http://localhost:8080    the browser calls gatehouse itself
//   NUXT_GATEHOUSE_SERVER_BASE_URL=http://127.0.0.1:8080    this server's SSR calls
// with the app's origin in gatehouse's GATEHOUSE_ALLOWED_ORIGINS.
export default defineNuxtConfig({
  compatibilityDate: "2025-07-15",
  modules: ["@gatehouse/nuxt"],
  gatehouse: {
    baseURL: "/api/auth",
    serverBaseURL: "http://127.0.0.1:8080",
    redirect: { signIn: "/sign-in", home: "/account" },
  },
  devtools: { enabled: false },
  telemetry: false,
  css: ["~/assets/main.css"],
  app: {
    head: {
      htmlAttrs: { lang: "en" },
      titleTemplate: "%s · gatehouse + Nuxt",
      meta: [{ name: "viewport", content: "width=device-width, initial-scale=1" }],
    },
  },
});
