//! The account page's lists: where the user is signed in, and their API tokens.

use crate::view::{self, Form, Input, button_form, field};
use gatehouse_http::views::{NewTokenView, SessionView, TokenView};
use maud::{Markup, html};

/// Said in place of a list that could not be read.
fn unreadable(what: &str) -> Markup {
    html! { p.error { "Your " (what) " could not be loaded just now. Reload the page to try again." } }
}

/// The sessions (`GET /sessions`), each but this one with its sign-out button, and "sign out
/// other devices".
pub(crate) fn sessions_section(
    token: &str,
    sessions: Option<&[SessionView]>,
    form: &Form,
    has_password: bool,
) -> Markup {
    html! {
    section aria-labelledby="sessions-h" {
        h2 #sessions-h { "Where you are signed in" }
        @if sessions.is_none() { (unreadable("sessions")) }
        ul.list {
            @for s in sessions.unwrap_or_default() {
                li {
                    span {
                        (s.user_agent.as_deref().unwrap_or("Unknown device")) br;
                        span.meta { (s.ip_address.as_deref().unwrap_or("unknown address")) " · last active " (when(&s.last_activity)) }
                    }
                    @if s.current {
                        span.badge { "this device" }
                    } @else {
                        (button_form(&format!("/account/sessions/{}/end", s.id), token,
                            "Sign out", &format!("Sign out the session on {}", s.user_agent.as_deref().unwrap_or("an unknown device")), "secondary"))
                    }
                }
            }
        }
        @if has_password {
            (view::form("/account/sessions/others", token, "Sign out other devices", html! {
                (field(form, "others-", Input::new("password", "Your password", "password", "current-password")))
            }))
        } @else {
            // Signing out every other device at once takes the password (`POST /logout-other-devices`).
            p.hint { "To sign out another device, use its Sign out button." }
        }
    }
    }
}

/// The tokens (`GET /tokens`) with their revoke buttons, a token just made (shown this once), and
/// the form that makes one.
pub(crate) fn tokens_section(
    token: &str,
    tokens: Option<&[TokenView]>,
    new_token: Option<&NewTokenView>,
    form: &Form,
    has_password: bool,
) -> Markup {
    html! {
    section aria-labelledby="tokens-h" {
        h2 #tokens-h { "API tokens" }
        @if let Some(t) = new_token {
            div.notice role="status" {
                p { "Your new token " strong { (t.name) } ". Copy it now: it will not be shown again." }
            }
            code.secret #new-token { (t.token) }
        }
        @if tokens.is_none() { (unreadable("tokens")) }
        ul.list {
            @for t in tokens.unwrap_or_default() {
                li {
                    span {
                        strong { (t.name) } br;
                        span.meta {
                            (abilities(&t.abilities))
                            " · " (t.expires_at.as_deref().map_or_else(|| "never expires".into(), |e| format!("expires {}", when(e))))
                            " · " (t.last_used_at.as_deref().map_or_else(|| "never used".into(), |u| format!("last used {}", when(u))))
                        }
                    }
                    (button_form(&format!("/account/tokens/{}/revoke", t.id), token,
                        "Revoke", &format!("Revoke the token {}", t.name), "secondary"))
                }
            }
        }
        (view::form("/account/tokens", token, "Create token", html! {
            (field(form, "token-", Input::new("name", "Token name", "text", "off")))
            (field(form, "token-", Input::new("abilities", "Abilities", "text", "off").optional()
                .hint("Comma-separated, such as read, write. Leave empty for every ability.")))
            (expiry_select(form))
            @if has_password {
                (field(form, "token-", Input::new("password", "Your password", "password", "current-password").optional()
                    .hint("Needed for a token with every ability, one that can make tokens or hand off, one that never expires or lives longer than 30 days.")))
            } @else {
                p.hint { "A token with every ability, one that can make tokens or hand off, one that never expires or lives longer than 30 days needs you to confirm it's you first (\u{201c}Email me a code\u{201d} above)." }
            }
        }))
    }
    }
}

fn expiry_select(form: &Form) -> Markup {
    let chosen = form.values.get("expires_in_minutes").map(String::as_str).unwrap_or("");
    let errors = form.errors.get("expires_in_minutes");
    let options = [("", "Never"), ("1440", "1 day"), ("10080", "7 days"), ("43200", "30 days"), ("525600", "1 year")];
    html! {
        div.field {
            label for="token-expires_in_minutes" { "Expires" }
            select #token-expires_in_minutes name="expires_in_minutes" {
                @for (v, label) in options { option value=(v) selected[v == chosen] { (label) } }
            }
            @if let Some(e) = errors { p.error { @for e in e { (e) " " } } }
        }
    }
}

fn abilities(all: &[String]) -> String {
    if all.is_empty() || all == ["*"] { "every ability".into() } else { all.join(", ") }
}

/// An RFC 3339 time as `2026-11-26 18:40 UTC`.
fn when(v: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}
