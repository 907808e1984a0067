import { defineNuxtRouteMiddleware, navigateTo, useRuntimeConfig } from "#app";
import { useUserLoaded, useUserState } from "../state.js";

/**
 * `definePageMeta({ middleware: "auth" })`: signed-in visitors only. Anyone else goes to
 * `redirect.signIn` with `?redirect=<the page they asked for>`.
 */
export default defineNuxtRouteMiddleware((to) => {
  if (useUserState().value) return;
  // SSR did not look (gatehouse.ssr false, or gatehouse failed): the browser decides after hydration.
  if (import.meta.server && !useUserLoaded().value) return;
  const { signIn } = useRuntimeConfig().public.gatehouse.redirect;
  if (to.path === signIn) return;
  return navigateTo({ path: signIn, query: { redirect: to.fullPath } });
});
