//! The words of the OpenAPI document: one entry per route, keyed by its route key. Everything
//! else (paths, methods, security, path parameters, bodies and their schemas, the error schema,
//! the `Allow` and `Retry-After` headers) comes from the route tables and the wire types.

use super::{Op, Param, Response};

/// The answer of a sign-in whose password was right for a user with a second factor.
const SECOND_FACTOR: Response = Response {
    status: 202,
    description: r"The password was right and the user has two-factor authentication on: nothing is issued yet; complete with `POST /two-factor-challenge`.",
    schema: Some("TwoFactorChallengeView"),
    set_cookie: None,
};

pub const INFO_DESCRIPTION: &str = r#"Laravel's auth tables on AWS Lambda: users and sessions, personal access tokens, password reset, cross-app sessions. Every error is `{"error": {"code", "message", "fields"?}}`. Every response carries `Cache-Control: no-store`, `Referrer-Policy: no-referrer`, `Strict-Transport-Security: max-age=63072000; includeSubDomains` and `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`."#;
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
/// 403 on a sign-in route: a forged cross-site request, or an account an operator disabled.
const CSRF_OR_DISABLED: (u16, &str) = (
    403,
    "Refused as a cross-site request forgery (code `csrf`), or the account is disabled by an operator (code `account_disabled`, answered only after the right password).",
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
            CSRF,
            (
                429,
                r#"Too many registrations from this client (10 an hour by default), counted before anything is hashed."#,
            ),
        ],
        query: &[],
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
                "The account is disabled by an operator (code `account_disabled`, answered only after the right password).",
            ),
        ],
        query: &[],
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
    },
];
