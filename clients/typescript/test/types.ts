// Type-level tests of the BUILT declarations (dist/*.d.ts), checked by `npm run typecheck`
// (tsc --noEmit -p test): what compiles must, and each `@ts-expect-error` line must NOT compile
// (tsc fails on an unused one), so a loosened type fails the run.
import {
  GatehouseError,
  createCookieJar,
  createGatehouse,
  type NewToken,
  type SignInResult,
  type Token,
  type User,
  type components,
  type paths,
} from "../dist/index.js";

const jar = createCookieJar();
const gatehouse = createGatehouse({ baseURL: "http://127.0.0.1:8080", fetch: jar.fetch, credentials: "include" });

export async function flows(): Promise<User> {
  const result: SignInResult = await gatehouse.signIn({ email: "ann@example.com", password: "pw", remember: true });
  if (result.kind === "two_factor") {
    // @ts-expect-error: the user is known only once the second factor is answered
    void result.user;
    return result.complete("123456");
  }
  // @ts-expect-error: a password is required
  await gatehouse.signIn({ email: "ann@example.com" });
  // @ts-expect-error: register needs the confirmation, as RegisterRequest says
  await gatehouse.register({ name: "Ann", email: "ann@example.com", password: "pw" });

  const sessions = await gatehouse.api.GET("/sessions");
  const devices: number | undefined = sessions.data?.known_devices;
  void devices;
  // @ts-expect-error: no such route
  await gatehouse.api.GET("/nope");
  // @ts-expect-error: a path parameter is required
  await gatehouse.api.DELETE("/tokens/{id}", {});

  const minted: NewToken = await gatehouse.createToken({ name: "ci", abilities: ["read"], expires_in_minutes: 60 });
  const plaintext: string = minted.token;
  void plaintext;
  for await (const t of gatehouse.listTokens({ limit: 10 })) {
    const listed: Token = t;
    // @ts-expect-error: a listed token never has its secret
    void listed.token;
  }
  try {
    await gatehouse.user();
  } catch (e) {
    if (e instanceof GatehouseError) {
      const problems: readonly string[] | undefined = e.fields["email"];
      const wait: number | undefined = e.retryAfter;
      void problems, wait, e.code, e.status;
    }
  }
  return result.user;
}

// The schema's own types are the source: User is components["schemas"]["User"].
export const sameUser: components["schemas"]["User"] extends User ? (User extends components["schemas"]["User"] ? true : false) : false = true;
export type LoginBody = paths["/login"]["post"]["requestBody"];
