import type { User } from "@gatehouse/client";
import { useState } from "#app";

/**
 * The signed-in user of THIS render (server) or this tab (browser): `useState`, so it lives in
 * the Nuxt app of one request and travels to the browser in the payload. Never a module-level
 * variable: on the server a module is shared by every request being rendered.
 */
export const useUserState = () => useState<User | null>("gatehouse:user", () => null);

/** Whether `useUserState()` holds gatehouse's answer (false: nobody asked yet, or the ask failed). */
export const useUserLoaded = () => useState<boolean>("gatehouse:loaded", () => false);

/** A same-app path to return to after signing in: `/…` only (not `//host`, not `/\\host`, not a URL). */
export function safeRedirect(value: unknown, fallback: string): string {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v !== "string" || !v.startsWith("/") || v.startsWith("//") || v.startsWith("/\\")) return fallback;
  return v;
}
