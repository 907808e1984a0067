import { defineNuxtRouteMiddleware, navigateTo, useRuntimeConfig } from "#app";
import { safeRedirect, useUserState } from "../state.js";

/**
 * `definePageMeta({ middleware: "guest" })`: signed-out visitors only (sign-in, registration).
 * A signed-in one goes on to `?redirect=` (a path of this app) or `redirect.home`.
 */
export default defineNuxtRouteMiddleware((to) => {
  if (!useUserState().value) return;
  const { home } = useRuntimeConfig().public.gatehouse.redirect;
  const target = safeRedirect(to.query.redirect, home);
  if (target === to.fullPath || target === to.path) return;
  return navigateTo(target);
});
