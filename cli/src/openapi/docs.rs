//! The words of the OpenAPI document: one entry per route, keyed by its route key. Everything
//! else (paths, methods, security, path parameters, bodies and their schemas, the error schema,
//! the `Allow` and `Retry-After` headers) comes from the route tables and the wire types, but for
//! the OAuth endpoints: their security, bodies and schemas are here ([`OAuth`], [`SCHEMAS`]), as
//! the RFCs shape them and the shared crate builds them (JSON, not wire types).

use super::{Body, FORM, OAuth, Op, Param, Response};

/// The answer of a sign-in whose password was right for a user with a second factor.
const SECOND_FACTOR: Response = Response {
    status: 202,
    description: r"The password was right and the user has two-factor authentication on: nothing is issued yet; complete with `POST /two-factor-challenge`.",
    schema: Some("TwoFactorChallengeView"),
    set_cookie: None,
};

pub const INFO_DESCRIPTION: &str = r#"Laravel's auth tables on AWS Lambda: users and sessions, personal access tokens, password reset, cross-app sessions, and an OAuth 2.1 / OpenID Connect provider (tag `oauth`). Every error is `{"error": {"code", "message", "fields"?}}`, but the OAuth endpoints' own, which are OAuth's `{"error", "error_description"}` (`OAuthError`). Every response carries `Cache-Control: no-store` (the discovery documents and the JWKS: `public, max-age=300`), `Referrer-Policy: no-referrer`, `Strict-Transport-Security: max-age=63072000; includeSubDomains` and `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`."#;
pub const BEARER_DESCRIPTION: &str = r#"`<id>.<user id>|<secret>` personal access token (tokens minted before tokens named their owner are `<id>|<secret>` and still work). The check reads the token and its owner in one call: a token stops working as soon as its user is deleted or disabled or its credentials change (a reset, a password change, other devices logged out), even before its revocation has run. A token stops working at its own expiry, or when it is older than GATEHOUSE_TOKEN_MAX_AGE_MINUTES (checked on every request, whenever it was minted)."#;
pub const COOKIE_DESCRIPTION: &str = r#"The session cookie: `__Host-gatehouse_session` (`__Secure-` and a `Domain` when GATEHOUSE_SESSION_DOMAIN is set). A state change it authenticates is refused with 403 `csrf` when the browser says the request comes from another site (`Sec-Fetch-Site` not `same-origin`/`none`, or an `Origin` neither the API's own nor allowed). A session ends after its idle lifetime, and at the latest at its absolute lifetime from login (GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES, 30 days by default), which activity and "remember me" cannot extend. It is accepted only by the app that issued it. Its value is a 256-bit random id, `.`, and the user id: the check reads the session and its user in one call, so a session stops working as soon as its user is deleted or disabled or its credentials change, even before its revocation has run."#;

/// 403 on a cookie-authenticated state change sent from another site.
/// 403 on the routes a handoff-opened session may not use.
const HANDOFF_OR_CSRF: (u16, &str) =
    (403, r"A session opened by another app's handoff, or refused as a cross-site request forgery (code `csrf`).");
/// 423 on the routes that need a recent password confirmation.
const CONFIRMATION_REQUIRED: (u16, &str) =
    (423, r"Code `password_confirmation_required`: confirm the password (`POST /user/confirm-password`) and retry.");
/// The query of a mailed signed link.
const EXPIRES: Param = Param {
    name: "expires",
    schema: r#"{"type": "string", "pattern": "^[0-9]{1,12}$"}"#,
    description: Some("Unix seconds, as mailed."),
};
const SIGNATURE: Param = Param { name: "signature", schema: r#"{"type": "string"}"#, description: Some("As mailed.") };

const CSRF: (u16, &str) =
    (403, "Refused as a cross-site request forgery (code `csrf`): a browser sent this state change from another site.");
/// 403 on a sign-in route: a forged cross-site request, an account an operator disabled, or the
/// before-sign-in hook's refusal.
const CSRF_OR_DISABLED: (u16, &str) = (
    403,
    "Refused as a cross-site request forgery (code `csrf`), or the account is disabled by an operator (code `account_disabled`, answered only after the right password), or the deployment's before-sign-in hook refused (code `sign_in_denied`; `message` is the hook's, for the person).",
);
/// 403 on registration: a forged cross-site request, or the before-sign-up hook's refusal.
const CSRF_OR_SIGN_UP_DENIED: (u16, &str) = (
    403,
    "Refused as a cross-site request forgery (code `csrf`), or the deployment's before-sign-up hook refused (code `sign_up_denied`; `message` is the hook's, for the person). Nothing was made.",
);
/// 422 on a route that takes the current password.
const WRONG_PASSWORD: (u16, &str) =
    (422, r#"Validation failed; `fields.password` is "is incorrect" when the password is wrong."#);
/// 429 on a route that checks the current password.
const TOO_MANY_PASSWORD_CHECKS: (u16, &str) =
    (429, "Too many password checks for this user (5 a minute per client, 30 an hour in all, by default).");

pub static OPS: &[Op] = &[
    Op {
        key: "POST /register",
        id: "register",
        tag: "users",
        summary: r#"Create an account and log in."#,
        description: Some(
            r#"Asked again after a 503 whose account was written (the same name and password, within 10 minutes, the account untouched since), it answers 201 and signs in, as the first attempt would have; a second verification mail may go out. That check is counted as a sign-in's password check is."#,
        ),
        ok: &[Response {
            status: 201,
            description: r#"Registered; a session cookie is set."#,
            schema: Some("UserBody"),
            set_cookie: Some(
                r#"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain)."#,
            ),
        }],
        errors: &[
            CSRF_OR_SIGN_UP_DENIED,
            (
                429,
                r#"Too many registrations from this client (10 an hour by default), counted before anything is hashed."#,
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /login",
        id: "login",
        tag: "users",
        summary: r#"Log in with email and password."#,
        description: None,
        ok: &[
            Response {
                status: 200,
                description: r#"Logged in; a fresh session cookie is set."#,
                schema: Some("UserBody"),
                set_cookie: Some(
                    r#"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain) and, on a device the account does not know now, the device cookie `__Host-gatehouse_session_device` (HttpOnly; Secure; SameSite=Strict; a year; bound to the user and its credentials version, listed on the account, at most 20): this device's sign-ins are then held to its own count and the account's known-device ceiling instead of the per-account limit for unknown devices, until a reset, a password change or a logout of other devices voids it."#,
                ),
            },
            SECOND_FACTOR,
        ],
        errors: &[
            CSRF_OR_DISABLED,
            (
                429,
                r#"Too many attempts, counted before any hash: per (email, client), per client, and per account from devices the account does not know (no device cookie, or one a credentials change voided); a known device has its own count and the account's known-device ceiling, so a flood cannot lock the owner out."#,
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /logout",
        id: "logout",
        tag: "users",
        summary: r#"End this session."#,
        description: Some(
            r#"Ends the session and everything derived from it (the session first, then what derives from it, its register entry last). Asked again after a 503 or a lost answer with the same cookie, it finishes what is left and answers 204 (the register still names the session, or marks its tree ended for a day); a cookie naming no such session of its user is 401."#,
        ),
        ok: &[Response {
            status: 204,
            description: r#"Logged out; the cookie is cleared."#,
            schema: None,
            set_cookie: Some(
                r#"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain)."#,
            ),
        }],
        errors: &[(
            403,
            r#"Refused as a cross-site request forgery (code `csrf`): a browser sent this state change from another site."#,
        )],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user",
        id: "currentUser",
        tag: "users",
        summary: r#"The authenticated user."#,
        description: None,
        ok: &[Response { status: 200, description: r#"The user."#, schema: Some("UserBody"), set_cookie: None }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /sessions",
        id: "listSessions",
        tag: "users",
        summary: r#"The user's sessions."#,
        description: None,
        ok: &[Response {
            status: 200,
            description: r#"Sessions, with a hint instead of each id, and how many devices the account knows."#,
            schema: Some("SessionsBody"),
            set_cookie: None,
        }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /logout-other-devices",
        id: "logoutOtherDevices",
        tag: "users",
        summary: r#"End every other session and credential of the user; this session continues under a new id."#,
        description: Some(
            r#"Checks the password, then moves the user's credentials version on: every other session, every personal access token, every handoff token and every cross-app session of the user is revoked, and the current session is rotated to a new id (the old cookie stops working; the new one is in `Set-Cookie`). The session keeps its start, so its absolute lifetime is unchanged. Asked again after a 503 whose change landed, the old cookie gets 401 (sign in again: the other devices were logged out); such a retry cannot be told from a copy of the cookie with the same password."#,
        ),
        ok: &[Response {
            status: 204,
            description: r#"Done; the current session was rotated: use the new cookie."#,
            schema: None,
            set_cookie: Some(
                r#"The rotated session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain); the previous cookie no longer works."#,
            ),
        }],
        errors: &[
            CSRF,
            (
                409,
                r#"The account's credentials changed concurrently (a password reset, another logout of other devices); code `conflict`. Sign in again."#,
            ),
            WRONG_PASSWORD,
            TOO_MANY_PASSWORD_CHECKS,
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/confirm-password",
        id: "confirmPassword",
        tag: "users",
        summary: r#"Confirm the password in this session (Laravel's `password.confirm`)."#,
        description: Some(
            r#"Proves the password again and records the confirmation on the current session. A confirmation counts as recent for GATEHOUSE_PASSWORD_TIMEOUT_SECONDS (15 minutes by default); signing in or registering is never one. Adding a passkey, changing the address, turning two-factor authentication on or off, new recovery codes, deleting the account and, from a session, minting a strong token — `*` abilities, `tokens:create` or `cross-app:handoff`, no expiry, or a life past GATEHOUSE_TOKEN_STRONG_AFTER_DAYS (30 by default) — need one."#,
        ),
        ok: &[Response { status: 204, description: r#"Confirmed."#, schema: None, set_cookie: None }],
        errors: &[
            (401, r#"No valid session cookie (or the session ended meanwhile)."#),
            CSRF,
            WRONG_PASSWORD,
            TOO_MANY_PASSWORD_CHECKS,
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user/confirmed-password-status",
        id: "confirmedPasswordStatus",
        tag: "users",
        summary: r#"Whether the password was confirmed recently enough in this session (Fortify's route)."#,
        description: None,
        ok: &[Response {
            status: 200,
            description: r#"The confirmation status of the current session."#,
            schema: Some("ConfirmedView"),
            set_cookie: None,
        }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /tokens",
        id: "createToken",
        tag: "tokens",
        summary: r#"Create a personal access token (needs ability tokens:create when called with a token)."#,
        description: Some(
            r#"A token is never stronger than the credential that mints it. From a token (which needs `tokens:create`): the new token's abilities must be within the parent's (422 on `abilities`), its expiry is capped at the parent's, and revoking the parent revokes it (with the handoffs and cross-app sessions derived from it). From a session: a strong token — `*` abilities, `tokens:create` or `cross-app:handoff`, no expiry, or a life past GATEHOUSE_TOKEN_STRONG_AFTER_DAYS (30 by default) — needs a recent password confirmation (`POST /user/confirm-password`, within GATEHOUSE_PASSWORD_TIMEOUT_SECONDS, 15 minutes by default; signing in is none), otherwise 423 `password_confirmation_required`. GATEHOUSE_TOKEN_MAX_AGE_MINUTES caps every expiry. A user's credentials mint at most GATEHOUSE_TOKENS_PER_USER_PER_HOUR (20) tokens an hour and GATEHOUSE_TOKENS_PER_USER_PER_DAY (100) a day, counted before anything is written (429 with Retry-After)."#,
        ),
        ok: &[Response {
            status: 201,
            description: r#"Created; the plaintext token is shown once."#,
            schema: Some("NewTokenView"),
            set_cookie: None,
        }],
        errors: &[
            (
                401,
                r#"No valid session cookie or bearer token, or the calling credential was revoked meanwhile (nothing was issued)."#,
            ),
            (
                403,
                r#"The calling token lacks tokens:create; the caller is a session opened by a cross-app handoff (such a session mints no credentials); or refused as a cross-site request forgery (code `csrf`)."#,
            ),
            (422, r#"Validation failed (e.g. `fields.abilities` when they exceed the calling token's)."#),
            (
                423,
                r#"Code `password_confirmation_required`: from a session, a strong token (`*`, `tokens:create`, `cross-app:handoff`, no expiry, or a long life) needs a recent password confirmation (`POST /user/confirm-password`); confirm and retry."#,
            ),
            (
                429,
                r#"Too many tokens minted for this user (20 an hour, 100 a day by default); `Retry-After` says when to retry."#,
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /tokens",
        id: "listTokens",
        tag: "tokens",
        summary: r#"The user's tokens, newest first."#,
        description: None,
        ok: &[Response {
            status: 200,
            description: r#"A page of tokens."#,
            schema: Some("TokenPage"),
            set_cookie: None,
        }],
        errors: &[(
            422,
            r#"Validation failed (code `validation_failed`): `fields.limit`, or `fields.cursor` for a cursor that is tampered with, another caller's or not a cursor."#,
        )],
        query: &[
            Param {
                name: "limit",
                schema: r#"{"type": "integer", "minimum": 1, "maximum": 100, "default": 50}"#,
                description: None,
            },
            Param {
                name: "cursor",
                schema: r#"{"type": "string"}"#,
                description: Some(
                    r#"Opaque: the `next_cursor` of the previous page, passed back unchanged. Cursors are sealed (HMAC with GATEHOUSE_APP_KEY) and bound to the caller: a tampered, foreign or garbage cursor is 422."#,
                ),
            },
        ],
        oauth: None,
    },
    Op {
        key: "POST /tokens/issue",
        id: "issueToken",
        tag: "tokens",
        summary: r#"Exchange credentials for a token (Sanctum's mobile flow)."#,
        description: None,
        ok: &[
            Response { status: 201, description: r#"Issued."#, schema: Some("NewTokenView"), set_cookie: None },
            SECOND_FACTOR,
        ],
        errors: &[
            (429, r#"Too many failed attempts."#),
            (
                403,
                "The account is disabled by an operator (code `account_disabled`, answered only after the right password), or the before-sign-in hook refused (code `sign_in_denied`).",
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /tokens/{id}",
        id: "deleteToken",
        tag: "tokens",
        summary: r#"Revoke one of the user's tokens and everything derived from it."#,
        description: Some(
            r#"The token first, then what derives from it, its register entry last. Asked again (after a 503 or a lost answer), a token of this user's revoked lately answers 204 again and finishes what is left."#,
        ),
        ok: &[Response {
            status: 204,
            description: r#"Revoked, together with every token, handoff token and cross-app session derived from it."#,
            schema: None,
            set_cookie: None,
        }],
        errors: &[CSRF, (404, r#"No such token of this user (never, or not lately)."#)],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /cross-app/handoff",
        id: "createHandoff",
        tag: "cross-app",
        summary: r#"Mint a single-use handoff token for a registered app (from a session, or a token with `cross-app:handoff`)."#,
        description: Some(
            r#"The handoff is bound to its target app (only that app exchanges it), to the caller's credential (revoking that credential revokes the handoff and the cross-app session made from it) and to the user's credentials version (a password reset or change voids it). Minted from a token, the session it becomes can do only what the token can, and ends when the token does. A user's credentials make at most GATEHOUSE_HANDOFFS_PER_USER_PER_HOUR (120) handoffs an hour and GATEHOUSE_HANDOFFS_PER_USER_PER_DAY (1000) a day."#,
        ),
        ok: &[Response { status: 201, description: r#"Minted."#, schema: Some("HandoffView"), set_cookie: None }],
        errors: &[
            (401, r#"No valid session cookie or bearer token, or the calling credential was revoked meanwhile."#),
            (
                403,
                r#"The calling token lacks the `cross-app:handoff` ability; the caller is a session opened by a cross-app handoff; or refused as a cross-site request forgery (code `csrf`)."#,
            ),
            (422, r#"Validation failed (e.g. `fields.target_app` for an app that is not registered)."#),
            (429, r#"Too many handoffs for this user; `Retry-After` says when to retry."#),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /cross-app/exchange",
        id: "exchangeHandoff",
        tag: "cross-app",
        summary: r#"Exchange a handoff token for a session in this app (the handoff's target)."#,
        description: Some(
            r#"Run by the target app's deployment: its own GATEHOUSE_APP_NAME is the target, and only a handoff made for it exchanges. The session is accepted only by this app and ends when the credential the handoff was made from is revoked."#,
        ),
        ok: &[Response {
            status: 200,
            description: r#"A session for this app, accepted only by this app."#,
            schema: Some("ExchangeView"),
            set_cookie: Some(
                r#"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain)."#,
            ),
        }],
        errors: &[
            CSRF,
            (
                422,
                r#"Validation failed (`fields.app` when it is not this app), or code `invalid_token`: the handoff token is invalid, used, expired, made for another app, or was minted before a password reset or change."#,
            ),
            (429, r#"Too many exchanges from this client (30 a minute by default)."#),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /cross-app/sessions/{id}",
        id: "revokeCrossAppSession",
        tag: "cross-app",
        summary: r#"Revoke a cross-app session."#,
        description: Some(
            r#"The session and what derives from it end first, the audit record is marked last. Asked again, a record of this user's already revoked answers 204 (finishing what is left)."#,
        ),
        ok: &[Response { status: 204, description: r#"Revoked."#, schema: None, set_cookie: None }],
        errors: &[CSRF, (404, r#"No such session of this user."#)],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /forgot-password",
        id: "forgotPassword",
        tag: "password reset",
        summary: r#"Ask for a reset link. The same answer whether or not the account exists."#,
        description: None,
        ok: &[Response { status: 202, description: r#"Accepted."#, schema: Some("MessageView"), set_cookie: None }],
        errors: &[(429, r#"Too many requests from this address."#)],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /reset-password",
        id: "resetPassword",
        tag: "password reset",
        summary: r#"Set a new password with a mailed token; revokes every session and token."#,
        description: Some(
            r#"Revokes every session, personal access token, handoff token and cross-app session of the user (their audit records get `revoked_at` and `revoked_reason` "password_reset"). The reset wins every race: a login, token issue or logout of other devices that checked the old password concurrently issues nothing. A token is spent once: asked again with the same token and the same new password within 10 minutes of its spend (a retry after a 503, or an answer that never arrived), it answers 200 as the first attempt would have, changing nothing; with any other password the token is invalid."#,
        ),
        ok: &[Response {
            status: 200,
            description: r#"Reset; sign in with the new password."#,
            schema: Some("MessageView"),
            set_cookie: None,
        }],
        errors: &[(
            429,
            r#"Too many resets from this client (10 a minute by default), counted before the token is checked."#,
        )],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /email/verify/{id}/{hash}",
        id: "verifyEmail",
        tag: "users",
        summary: "The landing of a mailed verification link, opened signed in: marks the address verified.",
        description: Some(
            r"The link mailed at registration and by `POST /email/verification-notification`: `/email/verify/{id}/{hash}?expires=…&signature=…`, signed with GATEHOUSE_APP_KEY over the user id, a keyed tag of the address and the expiry (GATEHOUSE_VERIFY_EXPIRE_MINUTES, 60 by default). As Laravel's `verification.verify`, it must be opened by the signed-in user it names (the session cookie, or a token of that user): a mail scanner that opens links, or anyone else, verifies nothing. Verifying sets `email_verified_at` once; a link for an address the user no longer has does nothing.",
        ),
        ok: &[Response {
            status: 200,
            description: "Verified (now or before).",
            schema: Some("VerificationView"),
            set_cookie: None,
        }],
        errors: &[(
            403,
            r"Code `invalid_link` (tampered, signed by another key, or for an address the user no longer has), `link_expired`, `not_your_link` (a valid link of another account than the signed-in one) or `csrf`.",
        )],
        query: &[EXPIRES, SIGNATURE],
        oauth: None,
    },
    Op {
        key: "POST /email/verification-notification",
        id: "sendVerificationNotification",
        tag: "users",
        summary: "Mail a fresh verification link (Laravel's verification.send).",
        description: Some(
            r"At most GATEHOUSE_VERIFY_RESEND_PER_MINUTE a minute per user (6 by default, Laravel's). The link goes to the address the user has when the mail job runs.",
        ),
        ok: &[
            Response { status: 202, description: "Queued.", schema: Some("MessageView"), set_cookie: None },
            Response {
                status: 200,
                description: "Already verified; nothing was sent.",
                schema: Some("MessageView"),
                set_cookie: None,
            },
        ],
        errors: &[
            (403, r"Refused as a cross-site request forgery (code `csrf`)."),
            (429, r"Too many links asked for; retry after `Retry-After` seconds."),
            (503, r"A backing store or the queue is unavailable; safe to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "PUT /user/profile-information",
        id: "updateProfile",
        tag: "users",
        summary: "Change the display name (Fortify's user-profile-information).",
        description: Some(
            r"From a token, the token needs the `user:update` ability. The name is trimmed and may not hold control, formatting (bidi overrides, zero-width) or line separator characters.",
        ),
        ok: &[Response { status: 200, description: "The updated user.", schema: Some("UserBody"), set_cookie: None }],
        errors: &[
            (403, r"The calling token lacks `user:update`, or refused as a cross-site request forgery (code `csrf`)."),
            (422, r"Validation failed (`fields.name`)."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "PUT /user/password",
        id: "updatePassword",
        tag: "users",
        summary: "Change the password with the current one (Fortify's user-password).",
        description: Some(
            r#"Session only. The current password is checked (throttled as every password check); the new one meets the registration policy. One compare-and-swap on the credentials version: every other session, every token, handoff and cross-app session is revoked, and this session continues under a new id (new cookie; the old one no longer works). A "password changed" mail is queued before the change and goes out once it is written. 409 when a reset or another change landed meanwhile. Asked again after a 503 whose change landed (the old cookie, the same new password, once, within 10 minutes), it answers 204 with a new cookie, as the first attempt would have."#,
        ),
        ok: &[Response {
            status: 204,
            description: "Changed.",
            schema: None,
            set_cookie: Some(
                r"The rotated session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain); the previous cookie no longer works.",
            ),
        }],
        errors: &[
            (401, r"No valid session cookie (a bearer token is not enough)."),
            (403, r"Refused as a cross-site request forgery (code `csrf`)."),
            (409, r"The account's credentials changed during this request (a reset or another change); sign in again."),
            (
                422,
                r"Validation failed: `fields.current_password` is incorrect, or the new `password` breaks the policy.",
            ),
            (429, r"Too many password checks; retry after `Retry-After` seconds."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /sessions/{id}",
        id: "endSession",
        tag: "users",
        summary: "End one session from the list (its `id` from GET /sessions), with everything derived from it.",
        description: Some(
            r"Session only. Ending the current session logs out (the cookie is cleared). The `id` is an opaque MAC of the owner and the session: it reveals neither the session secret nor its hash and names nothing for another user (404).",
        ),
        ok: &[Response {
            status: 204,
            description: "Ended.",
            schema: None,
            set_cookie: Some(r"Cleared when the session ended is the current one."),
        }],
        errors: &[
            (401, r"No valid session cookie (a bearer token is not enough)."),
            (403, r"Refused as a cross-site request forgery (code `csrf`)."),
            (
                404,
                r"No session of this user has that id (another user's, or one ended more than a day ago: ending it again lately answers 204).",
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /cross-app/sessions",
        id: "listCrossAppSessions",
        tag: "cross-app",
        summary: "The caller's cross-app audit trail, newest first.",
        description: Some(
            r"Every session another app's handoff opened here for this user, kept GATEHOUSE_CROSS_APP_AUDIT_DAYS (90): source and target app, when it opened, when and why it ended (revoked by the user, logout, password reset or change, other devices logged out, parent revoked), IP and user agent.",
        ),
        ok: &[Response {
            status: 200,
            description: "A page of records.",
            schema: Some("CrossAppPage"),
            set_cookie: None,
        }],
        errors: &[(422, r"`limit` out of range, or a cursor that is not one this API handed to this caller.")],
        query: &[
            Param {
                name: "limit",
                schema: r#"{"type": "integer", "minimum": 1, "maximum": 100, "default": 50}"#,
                description: None,
            },
            Param {
                name: "cursor",
                schema: r#"{"type": "string"}"#,
                description: Some("Opaque: the `next_cursor` of the previous page, passed back unchanged."),
            },
        ],
        oauth: None,
    },
    Op {
        key: "DELETE /user",
        id: "deleteUser",
        tag: "users",
        summary: "Delete the account and everything of it (Jetstream's delete-user).",
        description: Some(
            r"Session only, within GATEHOUSE_PASSWORD_TIMEOUT_SECONDS of a password confirmation (`POST /user/confirm-password`; signing in is none), else 423 `password_confirmation_required`. A job that finishes the deletion is queued first (a minute later); then one write marks the user as being deleted and moves its credentials version on, so from that moment no check honours any of its sessions or tokens (each check reads the owner with the credential, in one call), nothing can be issued and no sign-in succeeds; then every session, token and handoff goes, the user and its email reservation in one transaction (the address can register again), the reset token, the throttle counts keyed by the user; cross-app audit records keep only a pseudonym (no IP address or user agent). A mail tells the address. Should the request be cut short after the mark (503), the job finishes the deletion, and the same session asking again within 10 minutes gets 204 (the deletion finished), not 401. A session opened by another app's handoff cannot delete the account (403).",
        ),
        ok: &[Response {
            status: 204,
            description: "Deleted; the cookie is cleared.",
            schema: None,
            set_cookie: Some(r"Clears the session cookie."),
        }],
        errors: &[HANDOFF_OR_CSRF, CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/email",
        id: "requestEmailChange",
        tag: "users",
        summary: "Ask to change the account's address: a confirmation link goes to the new one, a notice to the current one.",
        description: Some(
            r"Session only, within GATEHOUSE_PASSWORD_TIMEOUT_SECONDS of a password confirmation (`POST /user/confirm-password`; signing in is none), else 423 `password_confirmation_required`. Counted per user before anything is read (GATEHOUSE_VERIFY_RESEND_PER_MINUTE a minute, 10 a day). Nothing changes until the link mailed to the new address (GATEHOUSE_EMAIL_CHANGE_URL, expiring as verification links do) is opened by this user: `GET /user/email/confirm/{id}`. The link is signed over the current address and the credentials version, so a password change, a reset or another confirmed change voids it; nothing is stored meanwhile.",
        ),
        ok: &[Response {
            status: 202,
            description: "Both mails queued.",
            schema: Some("MessageView"),
            set_cookie: None,
        }],
        errors: &[
            HANDOFF_OR_CSRF,
            (422, r"`email` is invalid, already your address, or has already been taken."),
            CONFIRMATION_REQUIRED,
            (429, r"Too many requests for this user; `Retry-After` says when to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user/email/confirm/{id}",
        id: "confirmEmailChange",
        tag: "users",
        summary: "The landing of the link mailed to a new address, opened signed in: the address changes, verified.",
        description: Some(
            r"`/user/email/confirm/{id}?email=…&expires=…&signature=…`, as mailed. It must be opened in a session of the user it names (the session cookie; not a token, nor a session another app handed off). A reset link mailed to the old address stops working; then, in one atomic step, the user's address changes and is verified, the old address is freed and the new one reserved, and a notice goes to the old address. Opening it again afterwards answers 200 with nothing more done.",
        ),
        ok: &[Response {
            status: 200,
            description: "The user at its new address.",
            schema: Some("UserBody"),
            set_cookie: None,
        }],
        errors: &[
            (
                403,
                r"Code `invalid_link` (tampered, signed by another key, or the address or password changed since it was sent), `link_expired`, `not_your_link` (a valid link of another account than the signed-in one), or a session opened by another app's handoff.",
            ),
            (409, r"Code `email_taken`: another account took the address since the request; nothing changed."),
        ],
        query: &[
            Param {
                name: "email",
                schema: r#"{"type": "string", "format": "email"}"#,
                description: Some("The new address, as mailed."),
            },
            EXPIRES,
            SIGNATURE,
        ],
        oauth: None,
    },
    Op {
        key: "POST /user/two-factor-authentication",
        id: "enableTwoFactor",
        tag: "two-factor",
        summary: "Enrol an authenticator app (Fortify's two-factor-authentication.enable): a pending secret, its otpauth:// URI and QR code.",
        description: Some(
            r"Session only, within the password-confirmation window (423 `password_confirmation_required` otherwise). The 160-bit secret is stored sealed with AES-256-GCM under a key derived from GATEHOUSE_APP_KEY, never in plain; it does nothing until a code confirms it. Enrolling again before confirming replaces the pending secret.",
        ),
        ok: &[Response { status: 200, description: "Shown once.", schema: Some("EnrolmentView"), set_cookie: None }],
        errors: &[HANDOFF_OR_CSRF, (409, r"Code `two_factor_enabled`: already on."), CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/confirmed-two-factor-authentication",
        id: "confirmTwoFactor",
        tag: "two-factor",
        summary: "Turn two-factor authentication on with a code from the app; answers the ten recovery codes, once.",
        description: Some(
            r"RFC 6238 (SHA-1, 6 digits, 30 s), one step of clock skew either way; the code's step is recorded as used. 5 attempts a minute per (user, client) and 30 an hour per user, counted first. Recovery codes are stored as HMACs under GATEHOUSE_APP_KEY of the user and the code. A notice is mailed.",
        ),
        ok: &[Response {
            status: 200,
            description: "On; the recovery codes, shown once. Every other session and token of the user (issued on a password alone) has ended.",
            schema: Some("RecoveryCodesView"),
            set_cookie: Some("This session goes on under a new id: the session cookie is set again."),
        }],
        errors: &[
            HANDOFF_OR_CSRF,
            (409, r"Code `two_factor_enabled` (already on) or `two_factor_not_enrolled` (enrol first)."),
            (422, r"`code` is invalid."),
            (429, r"Too many attempts; `Retry-After` says when to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /user/two-factor-authentication",
        id: "disableTwoFactor",
        tag: "two-factor",
        summary: "Turn two-factor authentication off (the secret and recovery codes are deleted).",
        description: Some(r"Session only, within the password-confirmation window. A notice is mailed."),
        ok: &[Response { status: 204, description: "Off.", schema: None, set_cookie: None }],
        errors: &[HANDOFF_OR_CSRF, CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/two-factor-recovery-codes",
        id: "regenerateRecoveryCodes",
        tag: "two-factor",
        summary: "Ten new recovery codes; the old ones stop working.",
        description: Some(r"Session only, within the password-confirmation window. A notice is mailed."),
        ok: &[Response {
            status: 200,
            description: "The new codes, shown once.",
            schema: Some("RecoveryCodesView"),
            set_cookie: None,
        }],
        errors: &[HANDOFF_OR_CSRF, (409, r"Code `two_factor_not_enabled`."), CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /two-factor-challenge",
        id: "twoFactorChallenge",
        tag: "two-factor",
        summary: "Complete a sign-in with a code from the app, a recovery code or a passkey (Fortify's two-factor.login).",
        description: Some(
            r"`challenge` is what `/login` or `/tokens/issue` answered (202) after a right password for a user with two-factor authentication on; it is single use, valid 5 minutes, bound to the client that passed the password step and to the credentials version then (a password change or reset voids it). Counted first: 30 a minute per client, 5 attempts per challenge, 5 a minute per (user, client), 30 an hour per user; a wrong answer burns neither the challenge nor a code, and the owner is mailed once per challenge that a right password came with a wrong second factor. A code is accepted once (its time step is recorded, atomically: two concurrent uses of one code, one wins); a recovery code once (and a notice is mailed). Answers what the password step was for: a session (200, cookie) or a token (201).",
        ),
        ok: &[
            Response {
                status: 200,
                description: "Signed in (from `/login`); a fresh session cookie is set.",
                schema: Some("UserBody"),
                set_cookie: Some(
                    r"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain).",
                ),
            },
            Response {
                status: 201,
                description: "A token (from `/tokens/issue`).",
                schema: Some("NewTokenView"),
                set_cookie: None,
            },
        ],
        errors: &[
            CSRF_OR_DISABLED,
            (
                422,
                r"`challenge` is invalid, expired, used or from another client (sign in again); `code` is invalid or already used; or `passkey` was not accepted (another account's, or it does not verify).",
            ),
            (429, r"Too many attempts; `Retry-After` says when to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/passkeys/options",
        id: "passkeyRegistrationOptions",
        tag: "passkeys",
        summary: "Options for `navigator.credentials.create()`: begin adding a passkey.",
        description: Some(
            r"Session only, within the password-confirmation window (an attacker holding a stolen session cannot add a lasting way in). A discoverable credential with user verification required; the account's passkeys are excluded; the user handle is the user id's 16 bytes (no name or address). The ceremony is kept 5 minutes, bound to this session, and taken once by `POST /user/passkeys`.",
        ),
        ok: &[Response {
            status: 200,
            description: "`publicKey`: pass it to `PublicKeyCredential.parseCreationOptionsFromJSON()`.",
            schema: Some("PasskeyOptionsView"),
            set_cookie: None,
        }],
        errors: &[HANDOFF_OR_CSRF, (409, r"Code `too_many_passkeys`: 10 already."), CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/passkeys",
        id: "addPasskey",
        tag: "passkeys",
        summary: "Add a passkey: the browser's answer to the registration options.",
        description: Some(
            r"Session only (the one that asked for the options). The response is verified against the ceremony (taken once: a replayed or second answer is refused), this deployment's RP id and origins (GATEHOUSE_PASSKEY_RP_ID, GATEHOUSE_PASSKEY_ORIGINS), the flags (user present and verified) and the signature algorithm (Ed25519, ES256, ES384, RS256). At most 10 per account. A notice is mailed.",
        ),
        ok: &[Response { status: 201, description: "Added.", schema: Some("PasskeyView"), set_cookie: None }],
        errors: &[
            HANDOFF_OR_CSRF,
            (409, r"Code `too_many_passkeys`, or `passkey_exists` (this credential is on the account already)."),
            (
                422,
                r"Code `invalid_ceremony` (unknown, expired, used, or another session's: start again), `passkey_rejected` (it does not verify), or a field error on `name` or `credential`.",
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user/passkeys",
        id: "listPasskeys",
        tag: "passkeys",
        summary: "The account's passkeys, oldest first.",
        description: None,
        ok: &[Response {
            status: 200,
            description: "Never a public key.",
            schema: Some("PasskeysView"),
            set_cookie: None,
        }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /user/passkeys/{id}",
        id: "removePasskey",
        tag: "passkeys",
        summary: "Remove a passkey (`id` from `GET /user/passkeys`).",
        description: Some(
            r"Session only, within the password-confirmation window. A notice is mailed. Idempotent: an id the account does not (or no longer) have answers 204 too and changes nothing, so a retry of a removal whose answer was lost is told it happened.",
        ),
        ok: &[Response { status: 204, description: "Removed, or not there.", schema: None, set_cookie: None }],
        errors: &[HANDOFF_OR_CSRF, CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user/oauth-apps",
        id: "listOAuthApps",
        tag: "oauth",
        summary: "The applications let in through the OAuth provider (\"connected apps\"), by name.",
        description: Some(
            r"Session only. Each client holding a consent or a live grant of the user's: its name (registrant-supplied text: escape it), the scopes approved, whether it is first-party, how many grants (signed-in copies) it holds, and since when.",
        ),
        ok: &[Response { status: 200, description: "The apps.", schema: Some("AuthorizedAppsView"), set_cookie: None }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /user/oauth-apps/{client_id}",
        id: "disconnectOAuthApp",
        tag: "oauth",
        summary: "Disconnect an application: its grants and consent revoked.",
        description: Some(
            r"Session only. Every refresh-token family the client holds for the user ends at once (its access tokens with them, at introspection, userinfo and the Lambda authorizer), and the consent is forgotten, so the next authorization asks again. Idempotent: 204 also when the app held nothing (a retry whose first answer was lost).",
        ),
        ok: &[Response {
            status: 204,
            description: "Disconnected, or nothing to disconnect.",
            schema: None,
            set_cookie: None,
        }],
        errors: &[(404, "Not a client id.")],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /auth/providers",
        id: "listIdentityProviders",
        tag: "social sign-in",
        summary: "The identity providers people may sign in with (the \"Continue with …\" buttons).",
        description: Some(
            r"As configured (GATEHOUSE_FEDERATION_PROVIDERS): each provider's id (what the provider routes take), its name, and `oidc` or `github`. Empty when none is.",
        ),
        ok: &[Response { status: 200, description: "The providers.", schema: Some("ProvidersView"), set_cookie: None }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /auth/providers/{provider}/start",
        id: "startProviderSignIn",
        tag: "social sign-in",
        summary: "Begin signing in (or up) with an identity provider: where to send the browser.",
        description: Some(
            r"Counted per client first (GATEHOUSE_FEDERATION_PER_CLIENT_PER_MINUTE, 30). A flow is recorded for 10 minutes under the hash of a fresh `state`, bound to this browser's `__Host-gatehouse_federation` cookie (set here when the browser has none); the PKCE verifier and the OpenID `nonce` are derived from that cookie's secret, so the flow can be finished only by this browser, once (`POST /auth/providers/{provider}/callback`, or the hosted callback page). Send the browser to `url`. The provider's redirect URI is the hosted callback page by default (GATEHOUSE_FEDERATION_<ID>_REDIRECT_URI sets your app's own page, which then posts `code` and `state` to the callback route).",
        ),
        ok: &[Response {
            status: 200,
            description: "The provider's authorization address.",
            schema: Some("FederationStartView"),
            set_cookie: Some(
                r"`__Host-gatehouse_federation` (HttpOnly; Secure; SameSite=None; Path=/; Max-Age=600), when the browser had none.",
            ),
        }],
        errors: &[CSRF, (404, "Code `provider_unknown`."), (429, "Too many flows begun from this client.")],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /auth/providers/{provider}/link",
        id: "startProviderLink",
        tag: "social sign-in",
        summary: "Begin connecting an identity provider to the signed-in account.",
        description: Some(
            r"Session only, with a recent confirmation (the password's, or the email code's for an account without one), as adding a passkey needs. Then as `/start`; the flow finishes at the callback only while the same user's session, still recently confirmed, is the caller. Connecting mails the address. An identity connected to another account answers `identity_taken` at the callback.",
        ),
        ok: &[Response {
            status: 200,
            description: "The provider's authorization address.",
            schema: Some("FederationStartView"),
            set_cookie: Some(r"`__Host-gatehouse_federation`, when the browser had none."),
        }],
        errors: &[HANDOFF_OR_CSRF, (404, "Code `provider_unknown`."), CONFIRMATION_REQUIRED],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /auth/providers/{provider}/callback",
        id: "finishProviderSignIn",
        tag: "social sign-in",
        summary: "Finish a provider flow with the `code` and `state` its redirect carried: a session, a two-factor challenge, or a connection.",
        description: Some(
            r"From the browser that began the flow (its binding cookie); counted per client first (GATEHOUSE_FEDERATION_PER_CLIENT_PER_MINUTE, 30). The flow is taken once: a replayed, expired or made-up `state`, or one begun in another browser (which is left for that browser), is `federation_state_invalid`. The code is exchanged with PKCE and the client's authentication; an OpenID provider's ID token must verify under a key of its JWKS with an asymmetric algorithm, for this issuer, this client (and `azp`), unexpired, with the flow's `nonce`; an RFC 9207 `iss` must be the provider's. GitHub's user is its numeric id, its address the primary one when verified. Then: a connected identity signs in its user (while the credentials version it was connected under is current: a reset, a password change or logging out other devices ends it); a new identity whose address an account holds joins it only when the provider is trusted for addresses (GATEHOUSE_FEDERATION_<ID>_TRUST_EMAIL), asserts this one verified and the account's address is verified — else `link_required`; a new address signs up (GATEHOUSE_FEDERATION_SIGNUP) when the provider asserts it verified, the account's address verified only for a trusted provider, without a password. A provider sign-in is one factor: an account with a second factor gets the challenge (202). No provider token is stored unless GATEHOUSE_FEDERATION_<ID>_KEEP_TOKENS=true (then sealed).",
        ),
        ok: &[
            Response {
                status: 200,
                description: "Signed in (a session cookie is set; `UserBody`), or, for a link flow, `{\"linked\": provider}`.",
                schema: Some("UserBody"),
                set_cookie: Some(
                    r"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain), when signed in.",
                ),
            },
            Response {
                status: 202,
                description: "The account has a second factor: answer the challenge at `POST /two-factor-challenge`.",
                schema: Some("TwoFactorChallengeView"),
                set_cookie: None,
            },
        ],
        errors: &[
            (400, "Code `federation_state_invalid`: not this browser's flow, already finished, expired or made up."),
            (403, "Code `email_unverified_at_provider`, `signup_disabled`, or `account_disabled`."),
            (404, "Code `provider_unknown`."),
            (
                409,
                "Code `link_required` (an account holds the address: sign in to it and connect the provider there) or `identity_taken`.",
            ),
            (429, "Too many callbacks from this client."),
            (
                502,
                "Code `federation_failed`: the provider's answer did not verify (the exchange, the ID token, its user API).",
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /user/identities",
        id: "listIdentities",
        tag: "social sign-in",
        summary: "The identity provider accounts connected to the user.",
        description: Some(
            r"Each connected provider account: an opaque id (for `DELETE`), the provider, the address it gave when connected (provider-supplied text: escape it), when connected and last used. Connections ended by a credentials change are not listed.",
        ),
        ok: &[Response {
            status: 200,
            description: "The identities.",
            schema: Some("IdentitiesView"),
            set_cookie: None,
        }],
        errors: &[],
        query: &[],
        oauth: None,
    },
    Op {
        key: "DELETE /user/identities/{id}",
        id: "unlinkIdentity",
        tag: "social sign-in",
        summary: "Disconnect an identity provider account.",
        description: Some(
            r"Session only, with a recent confirmation. Refused when it is the account's last way in (no password, no passkey, no other connected provider): set a password through a reset first. The address is mailed.",
        ),
        ok: &[Response { status: 204, description: "Disconnected.", schema: None, set_cookie: None }],
        errors: &[
            HANDOFF_OR_CSRF,
            (404, "No such connected account of this user."),
            (409, "Code `last_way_in`."),
            CONFIRMATION_REQUIRED,
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /auth/email-link",
        id: "emailLinkRequest",
        tag: "email sign-in",
        summary: "Ask for a sign-in mail: a link and a six-digit code. The same answer whether or not the address has an account.",
        description: Some(
            r"Counted first, per address (3 per 15 minutes and 10 a day by default, from all clients together: GATEHOUSE_EMAIL_LINK_PER_ADDRESS, GATEHOUSE_EMAIL_LINK_PER_ADDRESS_PER_DAY) and per client (GATEHOUSE_EMAIL_LINK_PER_CLIENT_PER_MINUTE, 10). Then the same work for every address (the same answer, cookie and store and queue calls): a mail job is queued, which mails the link and the code to an account whose address is verified (not disabled, not being deleted), tells an account whose address is not verified to sign in or reset first, and, with GATEHOUSE_EMAIL_LINK_SIGNUP=true, mails a sign-up link to an address no account holds; otherwise nothing. The link (GATEHOUSE_EMAIL_LINK_URL, by default the hosted page `/account/email-link?token=…`) and the code work once, for 15 minutes, in this browser only (its binding cookie): finish with `POST /auth/email-link/complete`. 404 when GATEHOUSE_EMAIL_LINK=false.",
        ),
        ok: &[Response {
            status: 202,
            description: "Accepted; a mail may be on its way.",
            schema: Some("MessageView"),
            set_cookie: Some(
                r"The binding cookie `__Host-gatehouse_email_link` (HttpOnly; Secure; SameSite=Lax; Path=/; 15 minutes): send it back with `POST /auth/email-link/complete`. A new request binds anew.",
            ),
        }],
        errors: &[
            CSRF,
            (404, "Sign-in by email is off (GATEHOUSE_EMAIL_LINK=false)."),
            (429, "Too many requests for this address or from this client, counted before anything is read."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /auth/email-link/complete",
        id: "emailLinkComplete",
        tag: "email sign-in",
        summary: "Finish a sign-in by mail with its link's `token` or its `code`, from the browser that asked.",
        description: Some(
            r"The binding cookie of `POST /auth/email-link` must come with it: a link opened in another browser (a forwarded mail, a mail scanner) signs no one in and takes nothing (type the code where you asked), and the code is found through the cookie alone. Single use: of racing uses one signs in. At most 5 codes are judged per request, then it is over. The account must be as it was when asked (its credentials version, its address; not disabled or being deleted). Then as `/login`: a session, or the two-factor challenge when the account has a second factor. A sign-up link makes the account (no password, the address verified) and signs it in. 30 a minute per client.",
        ),
        ok: &[
            Response {
                status: 200,
                description: "Signed in; a fresh session cookie is set.",
                schema: Some("UserBody"),
                set_cookie: Some(
                    r"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain), the device cookie on a device the account does not know (as `/login`), and the binding cookie cleared.",
                ),
            },
            Response {
                status: 201,
                description: "A sign-up link: the account was made, and is signed in.",
                schema: Some("UserBody"),
                set_cookie: Some(
                    r"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain), and the binding cookie cleared.",
                ),
            },
            Response {
                status: 202,
                description: r"The account has two-factor authentication on: nothing is issued yet; complete with `POST /two-factor-challenge`.",
                schema: Some("TwoFactorChallengeView"),
                set_cookie: None,
            },
        ],
        errors: &[
            CSRF,
            (404, "Sign-in by email is off (GATEHOUSE_EMAIL_LINK=false)."),
            (
                422,
                r"Code `email_link_invalid`: the link or code is wrong, expired, used, spent on wrong codes, asked for in another browser (or without the binding cookie), or the account changed since; or neither or both of `token` and `code` were given.",
            ),
            (429, "Too many attempts from this client; `Retry-After` says when to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/confirm-by-email",
        id: "confirmByEmail",
        tag: "email sign-in",
        summary: "Mail a confirmation code: the fresh proof of an account without a password.",
        description: Some(
            r"For an account made by an email link or a provider (no password), which cannot use `POST /user/confirm-password`: a six-digit code is mailed to its address, for this session, for 15 minutes. Counted per user as sign-in mails are (3 per 15 minutes, 10 a day by default).",
        ),
        ok: &[Response {
            status: 202,
            description: "A code is on its way.",
            schema: Some("MessageView"),
            set_cookie: None,
        }],
        errors: &[
            (401, r#"No valid session cookie."#),
            CSRF,
            (422, "Code `password_required`: the account has a password; confirm with `POST /user/confirm-password`."),
            (429, "Too many codes asked for this user."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /user/confirm-by-email/verify",
        id: "confirmByEmailVerify",
        tag: "email sign-in",
        summary: "Confirm this session with the mailed code, as a password confirmation does.",
        description: Some(
            r"The code this session asked for (`POST /user/confirm-by-email`), once; at most 5 codes are judged, then ask again. The confirmation is recorded on the session exactly as `POST /user/confirm-password` records it.",
        ),
        ok: &[Response { status: 204, description: r#"Confirmed."#, schema: None, set_cookie: None }],
        errors: &[
            (401, r#"No valid session cookie (or the session ended meanwhile)."#),
            CSRF,
            (
                422,
                r#"Validation failed; `fields.code` is "is invalid or has expired" for a wrong, used, spent or expired code."#,
            ),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /passkeys/options",
        id: "passkeySignInOptions",
        tag: "passkeys",
        summary: "Options for `navigator.credentials.get()`: sign in with a passkey, or answer a two-factor challenge with one.",
        description: Some(
            r"No account is named: the authenticator offers the passkeys it holds for this site. The ceremony is kept 5 minutes, bound to the client, and taken once by `POST /passkeys/login` or `POST /two-factor-challenge`. 30 a minute per client.",
        ),
        ok: &[Response {
            status: 200,
            description: "`publicKey`: pass it to `PublicKeyCredential.parseRequestOptionsFromJSON()`.",
            schema: Some("PasskeyOptionsView"),
            set_cookie: None,
        }],
        errors: &[(429, r"Too many; `Retry-After` says when to retry.")],
        query: &[],
        oauth: None,
    },
    Op {
        key: "POST /passkeys/login",
        id: "passkeyLogin",
        tag: "passkeys",
        summary: "Sign in with a passkey alone.",
        description: Some(
            r"The assertion is verified against the ceremony (taken once), the passkey stored for its credential id under the user its user handle names, this deployment's RP id and origins, and the flags (user present and verified: a passkey is two factors, so no TOTP code is asked). The authenticator's new state (its signature counter) is written on condition that it is still the one read: of two uses of one state, one passes (a cloned authenticator). 30 a minute per client. Then as `/login`: a session, the cookie.",
        ),
        ok: &[Response {
            status: 200,
            description: "Signed in; a fresh session cookie is set.",
            schema: Some("UserBody"),
            set_cookie: Some(
                r"The session cookie `__Host-gatehouse_session` (HttpOnly; Secure; SameSite=Lax; Path=/; no Domain).",
            ),
        }],
        errors: &[
            CSRF_OR_DISABLED,
            (
                422,
                r"Code `invalid_ceremony` (unknown, expired, used, or another client's), `passkey_rejected` (unknown passkey, bad signature, wrong origin, a state used concurrently), or a field error on `credential`.",
            ),
            (429, r"Too many attempts; `Retry-After` says when to retry."),
        ],
        query: &[],
        oauth: None,
    },
    Op {
        key: "GET /.well-known/openid-configuration",
        id: "openidConfiguration",
        tag: "oauth",
        summary: "The provider's metadata (OpenID Connect Discovery 1.0).",
        description: Some(DISCOVERY),
        ok: &[METADATA],
        errors: &[],
        query: &[],
        oauth: Some(OAuth { security: &[], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "GET /.well-known/oauth-authorization-server",
        id: "oauthAuthorizationServerMetadata",
        tag: "oauth",
        summary: "The provider's metadata (RFC 8414): the same document as `/.well-known/openid-configuration`.",
        description: Some(DISCOVERY),
        ok: &[METADATA],
        errors: &[],
        query: &[],
        oauth: Some(OAuth { security: &[], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "GET /.well-known/oauth-protected-resource",
        id: "oauthProtectedResourceMetadata",
        tag: "oauth",
        summary: "How a client of the API behind gatehouse finds its authorization server (RFC 9728).",
        description: Some(
            r"`resource` is GATEHOUSE_OAUTH_AUDIENCE (the `aud` of access tokens; the issuer by default), its one authorization server this provider (GATEHOUSE_OAUTH_ISSUER); access tokens go in the `Authorization: Bearer` header only. `Cache-Control: public, max-age=300`.",
        ),
        ok: &[Response {
            status: 200,
            description: "The protected resource's metadata.",
            schema: Some("OAuthProtectedResourceMetadata"),
            set_cookie: None,
        }],
        errors: &[],
        query: &[],
        oauth: Some(OAuth { security: &[], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "GET /.well-known/jwks.json",
        id: "jwks",
        tag: "oauth",
        summary: "The public keys that check the provider's access and ID tokens (a JWK Set, RFC 7517).",
        description: Some(
            r"P-256 keys (ES256), each `kid` its RFC 7638 thumbprint: the signing key (GATEHOUSE_OAUTH_SIGNING_KEY, or the KMS key GATEHOUSE_OAUTH_KMS_KEY_ID, which never leaves KMS) and, with KMS, the previous keys still published while their tokens live (GATEHOUSE_OAUTH_KMS_PREVIOUS_KEY_IDS). `Cache-Control: public, max-age=300`.",
        ),
        ok: &[Response { status: 200, description: "The published keys.", schema: Some("JwkSet"), set_cookie: None }],
        errors: &[],
        query: &[],
        oauth: Some(OAuth { security: &[], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "POST /oauth/token",
        id: "oauthToken",
        tag: "oauth",
        summary: "The token endpoint (OAuth 2.1): exchange an authorization code, refresh a grant, or get a client's own token.",
        description: Some(
            r#"Counted first (429). Then `grant_type`, then the client authenticates (see `clientBasic`), then the grant, which the client must be registered for (`unauthorized_client` otherwise).

`authorization_code`: `code` (from the hosted authorization page, single use, valid GATEHOUSE_OAUTH_CODE_SECONDS, 60 by default), `redirect_uri` (exactly the one of the authorization request) and `code_verifier` (PKCE is required, S256 only: 43 to 128 unreserved characters whose base64url SHA-256 is the request's `code_challenge`). The first attempt spends the code whatever follows: a wrong client, redirect URI or verifier burns it; a code presented again revokes everything it gave (RFC 6749 §4.1.2). The grant is issued only under the user's credentials version of the approval (a password reset or change, or a logout of other devices since, leaves nothing) and only to an account still usable. Answers an access token, a refresh token when `offline_access` was granted and the client has the `refresh_token` grant, and an ID token when `openid` was granted (`nonce`, `auth_time`, `sid`, `at_hash`, and the `profile` and `email` claims of the granted scopes).

`refresh_token`: `refresh_token` and, optionally, `scope` (within the granted scopes; the granted ones by default). Rotation: each use spends the token and answers a new one; a spent one presented again (reuse) revokes the whole grant — every refresh and access token of its family — and answers `invalid_grant`. Another client's refresh token changes nothing. A grant below its user's current credentials version (a reset or password change whose revocation has not landed yet) is refused and ended. The grant's life is absolute (GATEHOUSE_OAUTH_REFRESH_DAYS, 30 by default): rotation never extends it. An ID token comes again when `openid` is among the scopes.

`client_credentials`: confidential clients only. `scope` within the client's scopes but the OpenID ones (all of those by default); the token's `sub` is the client id; no refresh or ID token.

Access tokens are RFC 9068 JWTs (`typ` `at+jwt`, ES256, keys at `/.well-known/jwks.json`, `aud` GATEHOUSE_OAUTH_AUDIENCE) living GATEHOUSE_OAUTH_ACCESS_TOKEN_SECONDS (600 by default); ID tokens GATEHOUSE_OAUTH_ID_TOKEN_SECONDS (600). Every grant of a user is a credential of theirs: revoking the user's credentials (a reset, a password change, logging out other devices, deletion) ends it."#,
        ),
        ok: &[Response { status: 200, description: "Issued.", schema: Some("OAuthToken"), set_cookie: None }],
        errors: &[
            (
                400,
                r"`invalid_request` (a parameter missing, repeated or malformed; a body that is not `application/x-www-form-urlencoded` or is over 64 KiB; the client authenticating both in the header and in the body), `invalid_grant` (the code unknown, expired, spent, or not this client's, redirect URI's or verifier's; the refresh token invalid, expired, revoked, another client's or reused; the user's credentials changed since the approval, or the account can no longer be used), `unauthorized_client` (a grant the client is not registered for; `client_credentials` for a public client), `unsupported_grant_type` or `invalid_scope`.",
            ),
            CLIENT_AUTHENTICATION_FAILED,
            OAUTH_TOO_MANY,
        ],
        query: &[],
        oauth: Some(OAuth {
            security: CLIENT_AUTH,
            body: Some(Body { media_type: FORM, schema: "OAuthTokenRequest" }),
            api_errors_too: &[],
        }),
    },
    Op {
        key: "GET /oauth/userinfo",
        id: "oauthUserInfo",
        tag: "oauth",
        summary: "The claims about the user an access token's scopes release (OpenID Connect Core §5.3).",
        description: Some(USERINFO),
        ok: &[USER_INFO],
        errors: USERINFO_ERRORS,
        query: &[],
        oauth: Some(OAuth { security: &[Some("oauthAccessToken")], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "POST /oauth/userinfo",
        id: "oauthUserInfoPost",
        tag: "oauth",
        summary: "The same as `GET /oauth/userinfo` (a body is ignored: the token goes in the header).",
        description: Some(USERINFO),
        ok: &[USER_INFO],
        errors: USERINFO_ERRORS,
        query: &[],
        oauth: Some(OAuth { security: &[Some("oauthAccessToken")], body: None, api_errors_too: &[] }),
    },
    Op {
        key: "POST /oauth/introspect",
        id: "oauthIntrospect",
        tag: "oauth",
        summary: "What a token issued to the calling client is worth now (RFC 7662).",
        description: Some(
            r#"Confidential clients only (`client_secret_basic` or `client_secret_post`; a public client is `invalid_client`). Counted first (429). Active are this client's live access tokens — signed by a published key, of this issuer, unexpired, not revoked, their grant not ended — and the current refresh token of this client's live grants (not a spent one). Every other token — another client's, expired, revoked, spent, unknown or malformed — is `{"active": false}`, the same answer. `token_type_hint` is accepted and ignored."#,
        ),
        ok: &[Response {
            status: 200,
            description: r#"`{"active": false}`, or an active token's claims."#,
            schema: Some("OAuthIntrospection"),
            set_cookie: None,
        }],
        errors: &[
            (
                400,
                r"`invalid_request`: `token` missing, a parameter repeated, a body that is not `application/x-www-form-urlencoded` or over 64 KiB, or the client authenticating both in the header and in the body.",
            ),
            (
                401,
                r#"`invalid_client`: client authentication failed, or the client is public; `WWW-Authenticate: Basic realm="gatehouse"`."#,
            ),
            OAUTH_TOO_MANY,
        ],
        query: &[],
        oauth: Some(OAuth {
            security: CLIENT_AUTH,
            body: Some(Body { media_type: FORM, schema: "OAuthTokenReference" }),
            api_errors_too: &[],
        }),
    },
    Op {
        key: "POST /oauth/revoke",
        id: "oauthRevoke",
        tag: "oauth",
        summary: "Revoke a token issued to the calling client (RFC 7009).",
        description: Some(
            r"Any client, a public one by its `client_id` alone. Counted first (429). A refresh token ends its whole grant: the family, every access token issued through it, as revoking the user's credentials does. An access token ends itself: introspection, userinfo and the token-check authorizer refuse it at once (a check of its signature alone, such as API Gateway's JWT authorizer, accepts it until it expires). Another client's token, an unknown, expired or malformed one changes nothing, and the answer is the same (RFC 7009 §2.2). `token_type_hint` is accepted and ignored.",
        ),
        ok: &[Response {
            status: 200,
            description: "Revoked, or nothing to revoke: `{}` either way.",
            schema: Some("EmptyObject"),
            set_cookie: None,
        }],
        errors: &[
            (
                400,
                r"`invalid_request`: `token` missing, a parameter repeated, a body that is not `application/x-www-form-urlencoded` or over 64 KiB, or the client authenticating both in the header and in the body.",
            ),
            CLIENT_AUTHENTICATION_FAILED,
            OAUTH_TOO_MANY,
        ],
        query: &[],
        oauth: Some(OAuth {
            security: CLIENT_AUTH,
            body: Some(Body { media_type: FORM, schema: "OAuthTokenReference" }),
            api_errors_too: &[],
        }),
    },
    Op {
        key: "POST /oauth/register",
        id: "oauthRegister",
        tag: "oauth",
        summary: "Dynamic client registration (RFC 7591), when it is open.",
        description: Some(
            r#"Open as configured: with GATEHOUSE_OAUTH_REGISTRATION_TOKEN, a caller presenting it (`initialAccessToken`) registers any client, confidential or public; with GATEHOUSE_OAUTH_OPEN_REGISTRATION=true, anyone registers a public client (`token_endpoint_auth_method` `none`: PKCE alone, as MCP clients do) with no token. Otherwise 403, and the discovery documents name no `registration_endpoint`. Counted first, as sign-ups are, and against a daily cap for everyone together (GATEHOUSE_OAUTH_REGISTRATIONS_PER_DAY, 1000) (429). The metadata must meet the rules of `OAuthClientMetadata`; unknown members are ignored. A scope besides the OpenID ones must be listed in GATEHOUSE_OAUTH_REGISTRATION_SCOPES (none by default), and `*` never is. Names with control, format or direction characters, and redirect URIs with a backslash, are refused. Errors of an authorization request by a registered client are shown on the hosted page, never redirected to its registrant's address. A registered client is never first-party: the person is always asked to consent. A confidential client's secret is in the answer, once (only its hash is kept), and does not expire."#,
        ),
        ok: &[Response {
            status: 201,
            description: "Registered (RFC 7591 §3.2.1).",
            schema: Some("OAuthClient"),
            set_cookie: None,
        }],
        errors: &[
            (
                400,
                r"`invalid_redirect_uri` (a problem with `redirect_uris` or `post_logout_redirect_uris`: missing for the `authorization_code` grant, too many, or one not allowed) or `invalid_client_metadata` (any other member of the wrong type or breaking a rule; a confidential client asked for with no initial access token).",
            ),
            (
                401,
                r#"The initial access token is wrong, or one was presented where none is configured: `invalid_token` with `WWW-Authenticate: Bearer error="invalid_token"`. An `Authorization: Bearer` header with no token is the API's `unauthenticated` (`Error`)."#,
            ),
            (
                403,
                r"`access_denied`: registration is not open to this caller (off, or only with the initial access token and none was presented).",
            ),
            (422, r"The body is not a JSON object (`Error`, code `validation_failed`, `fields.body`)."),
            (
                429,
                r"`slow_down`: over GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR registrations (10 by default) an hour from this client address, counted as sign-ups are, before the body is read; `Retry-After` says when to retry.",
            ),
        ],
        query: &[],
        oauth: Some(OAuth {
            security: &[Some("initialAccessToken"), None],
            body: Some(Body { media_type: "application/json", schema: "OAuthClientMetadata" }),
            api_errors_too: &[401],
        }),
    },
];

/// How the token, introspection and revocation endpoints are called: `client_secret_basic`, or
/// the credentials in the form (`client_secret_post`, or a public client's `client_id`).
const CLIENT_AUTH: &[Option<&str>] = &[Some("clientBasic"), None];

const CLIENT_AUTHENTICATION_FAILED: (u16, &str) = (
    401,
    r#"`invalid_client`: client authentication failed — one answer for an unknown or revoked client, a wrong secret, a secret from a public client or none from a confidential one, a malformed `Authorization` header; `WWW-Authenticate: Basic realm="gatehouse"`."#,
);

/// 429 on every OAuth endpoint that counts.
const OAUTH_TOO_MANY: (u16, &str) = (
    429,
    r"`slow_down`: over GATEHOUSE_OAUTH_PER_CLIENT_PER_MINUTE requests (120 by default) a minute from this client address to this endpoint, counted before anything is read; `Retry-After` says when to retry.",
);

/// What a 503 of an OAuth endpoint is.
pub const OAUTH_UNAVAILABLE: &str = r"`temporarily_unavailable`: a backing store or the signing key is unavailable; safe to retry. Past the function's deadline, the API's `unavailable` (`Error`).";

/// The `WWW-Authenticate` header of an OAuth endpoint's 401.
pub const WWW_AUTHENTICATE: &str =
    r#"`Basic realm="gatehouse"` for `invalid_client`, `Bearer error="invalid_token"` for `invalid_token`."#;

pub const CLIENT_BASIC_DESCRIPTION: &str = r#"An OAuth client at the token, introspection and revocation endpoints, `client_secret_basic` (RFC 6749 §2.3.1): the client id and secret, each form-urlencoded, as the user name and password. Instead, a confidential client may send `client_id` and `client_secret` in the form (`client_secret_post`) and a public client its `client_id` alone — one way, not both (`invalid_request`). During a secret rotation the previous secret works until its overlap ends. Only a client's secret's hash is kept, compared in constant time."#;
pub const OAUTH_ACCESS_TOKEN_DESCRIPTION: &str = r#"An access token of the OAuth provider (`POST /oauth/token`): an RFC 9068 JWT (`typ` `at+jwt`, ES256, keys at `/.well-known/jwks.json`). Live while unexpired, not revoked (`POST /oauth/revoke`) and its grant not ended (refresh token reuse, the user's credentials revoked). Not a credential of the API's own routes."#;
pub const INITIAL_ACCESS_TOKEN_DESCRIPTION: &str =
    r#"RFC 7591's initial access token: the value of GATEHOUSE_OAUTH_REGISTRATION_TOKEN, compared in constant time."#;

/// The discovery documents' words.
const DISCOVERY: &str = r"The endpoints are under GATEHOUSE_OAUTH_ISSUER (the `issuer`), but the authorization and end-session endpoints, which are hosted pages under GATEHOUSE_OAUTH_PAGES_URL (`/oauth/authorize`, `/oauth/logout`). The authorization code flow only (`response_type` `code`, `response_mode` `query`), PKCE with S256 required, redirect URIs matched exactly, `iss` in the authorization response (RFC 9207); grants `authorization_code`, `refresh_token`, `client_credentials`; ID tokens signed ES256. `registration_endpoint` only when registration is open (GATEHOUSE_OAUTH_REGISTRATION_TOKEN or GATEHOUSE_OAUTH_OPEN_REGISTRATION). `Cache-Control: public, max-age=300` (it changes with a deployment).";

const METADATA: Response = Response {
    status: 200,
    description: "The provider's metadata.",
    schema: Some("OAuthServerMetadata"),
    set_cookie: None,
};

const USERINFO: &str = r"The access token in `Authorization: Bearer` (never the body or the query). Counted first (429). The token must be live (signed by a published key, of this issuer, unexpired, not revoked, its grant not ended), carry `openid`, and be a user's (not a client's own, from `client_credentials`), whose account is still usable. Answers `sub` and the claims of the granted `profile` (`name`, `updated_at`) and `email` (`email`, `email_verified`) scopes.";

const USER_INFO: Response =
    Response { status: 200, description: "The user's claims.", schema: Some("OAuthUserInfo"), set_cookie: None };

const USERINFO_ERRORS: &[(u16, &str)] = &[
    (
        401,
        r#"`invalid_token` (`WWW-Authenticate: Bearer error="invalid_token"`): no bearer token, one that is not a live access token of this issuer, or its user can no longer be used."#,
    ),
    (
        403,
        r#"`insufficient_scope` (`WWW-Authenticate: Bearer error="insufficient_scope", scope="openid"`): the token lacks `openid`, or is a client's own."#,
    ),
    OAUTH_TOO_MANY,
];

/// The schemas of the OAuth endpoints' bodies, added to `components.schemas`: the shared crate
/// builds these answers as JSON (`gatehouse::services::oauth`), and the endpoints parse their
/// forms themselves.
pub const SCHEMAS: &[(&str, &str)] = &[
    (
        "OAuthError",
        r##"{
  "type": "object",
  "description": "An OAuth endpoint's error (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2), instead of the API's `Error`.",
  "required": ["error", "error_description"],
  "properties": {
    "error": {
      "type": "string",
      "enum": ["invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "invalid_token", "insufficient_scope", "access_denied", "slow_down", "temporarily_unavailable", "invalid_redirect_uri", "invalid_client_metadata"]
    },
    "error_description": { "type": "string", "description": "For the client's developer, in English." }
  }
}"##,
    ),
    (
        "OAuthTokenRequest",
        r##"{
  "type": "object",
  "description": "The token request (RFC 6749 §4.1.3, §6, §4.4), each parameter at most once. What a grant needs besides `grant_type` is required with it.",
  "required": ["grant_type"],
  "properties": {
    "grant_type": { "type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"] },
    "code": { "type": "string", "minLength": 1, "description": "`authorization_code`: the code the redirect carried." },
    "redirect_uri": { "type": "string", "minLength": 1, "description": "`authorization_code`: exactly the authorization request's." },
    "code_verifier": { "type": "string", "pattern": "^[A-Za-z0-9._~-]{43,128}$", "description": "`authorization_code`: the PKCE verifier (S256)." },
    "refresh_token": { "type": "string", "minLength": 1, "description": "`refresh_token`: the latest refresh token of the grant." },
    "scope": { "type": "string", "description": "`refresh_token`, `client_credentials`: space-separated, within what was granted (all of it by default)." },
    "client_id": { "type": "string", "pattern": "^[a-z0-9._-]{3,64}$", "description": "`client_secret_post`, or a public client." },
    "client_secret": { "type": "string", "minLength": 1, "description": "`client_secret_post`." }
  },
  "allOf": [
    {
      "if": { "properties": { "grant_type": { "const": "authorization_code" } } },
      "then": { "required": ["code", "redirect_uri", "code_verifier"] }
    },
    {
      "if": { "properties": { "grant_type": { "const": "refresh_token" } } },
      "then": { "required": ["refresh_token"] }
    }
  ]
}"##,
    ),
    (
        "OAuthTokenReference",
        r##"{
  "type": "object",
  "description": "A token to introspect (RFC 7662 §2.1) or revoke (RFC 7009 §2.1), each parameter at most once.",
  "required": ["token"],
  "properties": {
    "token": { "type": "string", "minLength": 1, "description": "An access token or a refresh token." },
    "token_type_hint": { "type": "string", "description": "Accepted and ignored." },
    "client_id": { "type": "string", "pattern": "^[a-z0-9._-]{3,64}$", "description": "`client_secret_post`, or a public client (revocation only)." },
    "client_secret": { "type": "string", "minLength": 1, "description": "`client_secret_post`." }
  }
}"##,
    ),
    (
        "OAuthClientMetadata",
        r##"{
  "type": "object",
  "description": "A client's metadata (RFC 7591 §2); every member optional, unknown ones ignored. `redirect_uris` are required for the `authorization_code` grant (the default); `refresh_token` needs `authorization_code`; `client_credentials` needs a confidential client.",
  "properties": {
    "client_name": { "type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S", "default": "Unnamed client", "description": "1 to 100 characters, none a control character." },
    "redirect_uris": {
      "type": "array",
      "maxItems": 10,
      "items": { "type": "string", "maxLength": 2000 },
      "description": "Matched exactly at authorization. Each https; http only on 127.0.0.1, [::1] or localhost; or an app's private-use scheme with a dot in it (RFC 8252, `com.example.app:/cb`). No fragment, no user information."
    },
    "post_logout_redirect_uris": {
      "type": "array",
      "maxItems": 10,
      "items": { "type": "string", "maxLength": 2000 },
      "description": "Where `/oauth/logout` may send the browser back to; the rules of `redirect_uris`."
    },
    "grant_types": {
      "type": "array",
      "items": { "type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"] },
      "default": ["authorization_code"]
    },
    "response_types": { "type": "array", "items": { "const": "code" } },
    "scope": {
      "type": "string",
      "default": "openid profile email offline_access",
      "description": "Space-separated: what the client may ask for. The OpenID scopes and ability strings, never `verified`."
    },
    "token_endpoint_auth_method": {
      "type": "string",
      "enum": ["client_secret_basic", "client_secret_post", "none"],
      "default": "client_secret_basic",
      "description": "`none` makes a public client (PKCE alone); either other a confidential one, which may then use both."
    }
  }
}"##,
    ),
    (
        "OAuthClient",
        r##"{
  "type": "object",
  "description": "A registered client (RFC 7591 §3.2.1).",
  "required": ["client_id", "client_name", "client_id_issued_at", "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types", "scope", "token_endpoint_auth_method", "first_party", "revoked"],
  "properties": {
    "client_id": { "type": "string" },
    "client_name": { "type": "string" },
    "client_id_issued_at": { "type": "integer", "description": "Unix seconds." },
    "redirect_uris": { "type": "array", "items": { "type": "string" } },
    "post_logout_redirect_uris": { "type": "array", "items": { "type": "string" } },
    "grant_types": { "type": "array", "items": { "type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"] } },
    "response_types": { "type": "array", "items": { "const": "code" } },
    "scope": { "type": "string" },
    "token_endpoint_auth_method": { "type": "string", "enum": ["client_secret_basic", "none"], "description": "`client_secret_basic` for every confidential client (`client_secret_post` works as well)." },
    "first_party": { "type": "boolean", "description": "Never, for a registered client: consent is asked." },
    "revoked": { "type": "boolean" },
    "client_secret": { "type": "string", "description": "A confidential client's secret, shown once." },
    "client_secret_expires_at": { "const": 0, "description": "With the secret: it does not expire." }
  }
}"##,
    ),
    (
        "OAuthToken",
        r##"{
  "type": "object",
  "description": "The token response (RFC 6749 §5.1).",
  "required": ["access_token", "token_type", "expires_in", "scope"],
  "properties": {
    "access_token": { "type": "string", "description": "An RFC 9068 JWT (`typ` `at+jwt`, ES256)." },
    "token_type": { "const": "Bearer" },
    "expires_in": { "type": "integer", "description": "The access token's life, in seconds." },
    "scope": { "type": "string", "description": "Space-separated: what the access token holds." },
    "refresh_token": { "type": "string", "description": "Of a user's grant, when the client has the `refresh_token` grant; the one it was asked with is spent." },
    "id_token": { "type": "string", "description": "An OpenID Connect ID token (ES256 JWT), when `openid` is among the scopes of a user's grant." }
  }
}"##,
    ),
    (
        "OAuthIntrospection",
        r##"{
  "type": "object",
  "description": "RFC 7662 §2.2: `{\"active\": false}`, or an active token's claims.",
  "required": ["active"],
  "properties": {
    "active": { "type": "boolean" },
    "token_type": { "type": "string", "enum": ["Bearer", "refresh_token"] },
    "client_id": { "type": "string" },
    "sub": { "type": "string", "description": "The user's id; for a client's own access token, the client id." },
    "scope": { "type": "string" },
    "jti": { "type": "string", "description": "Access tokens only." },
    "iat": { "type": "integer", "description": "Unix seconds; for a refresh token, when the grant began." },
    "exp": { "type": "integer", "description": "Unix seconds; for a refresh token, the grant's absolute end." },
    "iss": { "type": "string" },
    "aud": { "type": "string", "description": "Access tokens only." }
  }
}"##,
    ),
    (
        "OAuthUserInfo",
        r##"{
  "type": "object",
  "description": "The user's claims (OpenID Connect Core §5.3.2).",
  "required": ["sub"],
  "properties": {
    "sub": { "type": "string", "description": "The user's id." },
    "name": { "type": "string", "description": "`profile`." },
    "updated_at": { "type": "integer", "description": "`profile`: Unix seconds." },
    "email": { "type": "string", "description": "`email`." },
    "email_verified": { "type": "boolean", "description": "`email`." }
  }
}"##,
    ),
    ("EmptyObject", r##"{ "type": "object", "description": "`{}`.", "maxProperties": 0 }"##),
    (
        "JwkSet",
        r##"{
  "type": "object",
  "description": "A JWK Set (RFC 7517 §5).",
  "required": ["keys"],
  "properties": {
    "keys": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["kty", "crv", "x", "y", "kid", "use", "alg"],
        "properties": {
          "kty": { "const": "EC" },
          "crv": { "const": "P-256" },
          "x": { "type": "string" },
          "y": { "type": "string" },
          "kid": { "type": "string", "description": "The key's RFC 7638 thumbprint." },
          "use": { "const": "sig" },
          "alg": { "const": "ES256" }
        }
      }
    }
  }
}"##,
    ),
    (
        "OAuthServerMetadata",
        r##"{
  "type": "object",
  "description": "OpenID Connect Discovery 1.0 §3 / RFC 8414 §2.",
  "required": ["issuer", "authorization_endpoint", "end_session_endpoint", "token_endpoint", "userinfo_endpoint", "introspection_endpoint", "revocation_endpoint", "jwks_uri", "response_types_supported", "response_modes_supported", "grant_types_supported", "code_challenge_methods_supported", "subject_types_supported", "id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported", "token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported", "scopes_supported", "claims_supported", "prompt_values_supported", "authorization_response_iss_parameter_supported", "request_parameter_supported", "request_uri_parameter_supported", "claims_parameter_supported"],
  "properties": {
    "issuer": { "type": "string", "description": "GATEHOUSE_OAUTH_ISSUER." },
    "authorization_endpoint": { "type": "string", "description": "A hosted page: GATEHOUSE_OAUTH_PAGES_URL + `/oauth/authorize`." },
    "end_session_endpoint": { "type": "string", "description": "A hosted page: GATEHOUSE_OAUTH_PAGES_URL + `/oauth/logout`." },
    "token_endpoint": { "type": "string" },
    "userinfo_endpoint": { "type": "string" },
    "introspection_endpoint": { "type": "string" },
    "revocation_endpoint": { "type": "string" },
    "registration_endpoint": { "type": "string", "description": "Only when registration is open." },
    "jwks_uri": { "type": "string" },
    "response_types_supported": { "type": "array", "items": { "type": "string" } },
    "response_modes_supported": { "type": "array", "items": { "type": "string" } },
    "grant_types_supported": { "type": "array", "items": { "type": "string" } },
    "code_challenge_methods_supported": { "type": "array", "items": { "type": "string" } },
    "subject_types_supported": { "type": "array", "items": { "type": "string" } },
    "id_token_signing_alg_values_supported": { "type": "array", "items": { "type": "string" } },
    "userinfo_signing_alg_values_supported": { "type": "array", "items": { "type": "string" } },
    "token_endpoint_auth_methods_supported": { "type": "array", "items": { "type": "string" } },
    "introspection_endpoint_auth_methods_supported": { "type": "array", "items": { "type": "string" } },
    "revocation_endpoint_auth_methods_supported": { "type": "array", "items": { "type": "string" } },
    "scopes_supported": { "type": "array", "items": { "type": "string" } },
    "claims_supported": { "type": "array", "items": { "type": "string" } },
    "prompt_values_supported": { "type": "array", "items": { "type": "string" } },
    "authorization_response_iss_parameter_supported": { "type": "boolean" },
    "request_parameter_supported": { "type": "boolean" },
    "request_uri_parameter_supported": { "type": "boolean" },
    "claims_parameter_supported": { "type": "boolean" }
  }
}"##,
    ),
    (
        "OAuthProtectedResourceMetadata",
        r##"{
  "type": "object",
  "description": "RFC 9728 §2.",
  "required": ["resource", "authorization_servers", "bearer_methods_supported", "scopes_supported", "jwks_uri"],
  "properties": {
    "resource": { "type": "string", "description": "GATEHOUSE_OAUTH_AUDIENCE." },
    "authorization_servers": { "type": "array", "items": { "type": "string" } },
    "bearer_methods_supported": { "type": "array", "items": { "const": "header" } },
    "scopes_supported": { "type": "array", "items": { "type": "string" } },
    "jwks_uri": { "type": "string" }
  }
}"##,
    ),
];

/// What every webhook says after its type's own words (`webhooks`, one per event type).
pub const WEBHOOK_DESCRIPTION: &str = r#"Sent to each webhook endpoint whose filter takes the type, as a Standard Webhooks delivery (https://www.standardwebhooks.com): at least once, and per user in `seq` order (a later event never overtakes an earlier one for the same user, so a gap in `seq` means one is still coming). Deduplicate on `webhook-id`, the event's `id`. Check the signature before reading the body. The body is the event: `type` and `data` as below, in the envelope every type shares; `version` is `x-gatehouse-events-version`. Personal data is only in the fields marked `x-gatehouse-personal` (`email`, `previous_email`, `name`, `client`); once the user is deleted, its events not yet delivered arrive with those fields left out and `redacted: true`. No event ever holds a password or its hash, a session id, a cookie, a token's secret or hash, a mailed link or code, a second factor's secret or recovery codes, passkey material, OAuth codes or tokens, or a provider's tokens. Sent today: the `user.*`, `two_factor.*` and `passkey.*` types; `session.*`, `token.*`, `identity.*` and `oauth.consent_*` are documented ahead of their emission (docs/design/events.md)."#;

/// A webhook's headers (Standard Webhooks), each required.
pub const WEBHOOK_HEADERS: &[(&str, &str)] = &[
    (
        "webhook-id",
        "The event's `id` (`evt_` and a UUIDv7), the same on every attempt: a receiver that has it already has the event.",
    ),
    (
        "webhook-timestamp",
        "When this attempt was sent, in seconds since the Unix epoch. Refuse a delivery more than five minutes from your clock either way (a replay).",
    ),
    (
        "webhook-signature",
        "`v1,` and the base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the endpoint's secret (the base64 after `whsec_`, decoded). Space-separated, two of them while the endpoint's secret is rotated: accept the delivery when one matches, compared in constant time.",
    ),
];

/// What a webhook's answer means.
pub const WEBHOOK_RECEIVED: &str = "Received. Any 2xx status ends the delivery of this event to this endpoint; any other answer, or none in time, is retried with backoff.";
