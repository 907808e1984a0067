import type {
  CreateTokenRequest,
  Gatehouse,
  LoginRequest,
  NewToken,
  Passkey,
  PendingTwoFactor,
  RegisterRequest,
  SignInResult,
  Token,
  User,
  Verification,
} from "@gatehouse/client";
import { GatehouseError } from "@gatehouse/client";
import { navigateTo, useNuxtApp, useRoute, useRuntimeConfig } from "#app";
import type { Ref } from "vue";
import { safeRedirect, useUserLoaded, useUserState } from "./state.js";

/** The signed-in user (`null` when signed out): shared by every component of this render or tab. */
export function useUser(): Ref<User | null> {
  return useUserState();
}

/**
 * What `useGatehouse()` gives: `@gatehouse/client`'s helpers, each keeping `useUser()` in step
 * (a sign-in sets it, a sign-out clears it, a change to the account reloads it), and the raw
 * typed `api` for every other route. Helpers throw `GatehouseError` on any non-2xx answer.
 */
export interface UseGatehouse {
  /** The client itself (`@gatehouse/client`'s `Gatehouse`), for what the wrappers below do not cover. */
  readonly client: Gatehouse;
  /** Every route, typed from openapi.json (openapi-fetch's `{ data, error, response }`). */
  readonly api: Gatehouse["api"];
  readonly user: Ref<User | null>;
  /** Asks gatehouse who is signed in (`GET /user`); `null` when no one. */
  refresh(): Promise<User | null>;
  register(body: RegisterRequest): Promise<User>;
  /** A session, or a second factor to answer: `complete(code)` / `completeWithPasskey()` set the user too. */
  signIn(body: LoginRequest): Promise<SignInResult>;
  signInWithPasskey(options?: { remember?: boolean; mediation?: string; signal?: AbortSignal }): Promise<User>;
  signOut(): Promise<void>;
  /** Where to go after a sign-in: this page's `?redirect=` when it is a path of this app, else `redirect.home`. */
  redirectAfterSignIn(): ReturnType<typeof navigateTo>;
  verifyEmail(link: string | URL): Promise<Verification>;
  confirmPassword(password: string): Promise<void>;
  enableTwoFactor(): Promise<PendingTwoFactor>;
  disableTwoFactor(): Promise<void>;
  registerPasskey(options: { name: string; signal?: AbortSignal }): Promise<Passkey>;
  listPasskeys(): Promise<Passkey[]>;
  removePasskey(id: string): Promise<void>;
  createToken(body: CreateTokenRequest): Promise<NewToken>;
  listTokens(options?: { limit?: number }): AsyncIterableIterator<Token>;
  revokeToken(id: string): Promise<void>;
}

/** gatehouse for this app: call it in `setup` (or a plugin, a middleware); the helpers may be called later. */
export function useGatehouse(): UseGatehouse {
  const nuxtApp = useNuxtApp();
  const client = nuxtApp.$gatehouse as Gatehouse;
  const user = useUserState();
  const loaded = useUserLoaded();
  const route = useRoute();
  const { home } = useRuntimeConfig().public.gatehouse.redirect;

  const set = (u: User | null) => {
    user.value = u;
    loaded.value = true;
    return u;
  };
  const refresh = async (): Promise<User | null> => {
    try {
      return set(await client.user());
    } catch (e) {
      if (e instanceof GatehouseError && e.status === 401) return set(null);
      throw e;
    }
  };
  /** Runs a change to the account, then reloads the user (its flags and counts changed). */
  const thenRefresh = async <T>(change: Promise<T>): Promise<T> => {
    const out = await change;
    await refresh();
    return out;
  };

  return {
    client,
    api: client.api,
    user,
    refresh,
    async register(body) {
      return set(await client.register(body)) as User;
    },
    async signIn(body) {
      const result = await client.signIn(body);
      if (result.kind === "signed_in") {
        set(result.user);
        return result;
      }
      return {
        ...result,
        complete: async (answer) => set(await result.complete(answer)) as User,
        completeWithPasskey: async (o) => set(await result.completeWithPasskey(o)) as User,
      };
    },
    async signInWithPasskey(o) {
      return set(await client.signInWithPasskey(o)) as User;
    },
    async signOut() {
      try {
        await client.signOut();
      } catch (e) {
        // Already signed out (the session expired, or another tab): the same end.
        if (!(e instanceof GatehouseError && e.status === 401)) throw e;
      }
      set(null);
    },
    redirectAfterSignIn() {
      return navigateTo(safeRedirect(route.query.redirect, home));
    },
    verifyEmail: (link) => thenRefresh(client.verifyEmail(link)),
    confirmPassword: (password) => client.confirmPassword(password),
    async enableTwoFactor() {
      const pending = await client.enableTwoFactor();
      return { ...pending, confirm: (code: string) => thenRefresh(pending.confirm(code)) };
    },
    disableTwoFactor: () => thenRefresh(client.disableTwoFactor()),
    registerPasskey: (o) => thenRefresh(client.registerPasskey(o)),
    listPasskeys: () => client.listPasskeys(),
    removePasskey: (id) => thenRefresh(client.removePasskey(id)),
    createToken: (body) => client.createToken(body),
    listTokens: (o) => client.listTokens(o),
    revokeToken: (id) => client.revokeToken(id),
  };
}
