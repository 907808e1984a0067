//! The account page's lists: where the user is signed in, and their API tokens.

use crate::view::{self, Form, Input, button_form, field};
use maud::{Markup, html};
use serde_json::Value;

/// Said in place of a list that could not be read.
fn unreadable(what: &str) -> Markup {
    html! { p.error { "Your " (what) " could not be loaded just now. Reload the page to try again." } }
}

/// The sessions (`GET /sessions`), each but this one with its sign-out button, and "sign out
/// other devices".
pub(crate) fn sessions_section(token: &str, sessions: Option<&[Value]>, form: &Form) -> Markup {
    html! {
    section aria-labelledby="sessions-h" {
        h2 #sessions-h { "Where you are signed in" }
        @if sessions.is_none() { (unreadable("sessions")) }
        ul.list {
            @for s in sessions.unwrap_or_default() {
                li {
                    span {
                        (s["user_agent"].as_str().unwrap_or("Unknown device")) br;
                        span.meta { (s["ip_address"].as_str().unwrap_or("unknown address")) " · last active " (when(&s["last_activity"])) }
                    }
                    @if s["current"].as_bool().unwrap_or(false) {
                        span.badge { "this device" }
                    } @else {
                        (button_form(&format!("/account/sessions/{}/end", s["id"].as_str().unwrap_or_default()), token,
                            "Sign out", &format!("Sign out the session on {}", s["user_agent"].as_str().unwrap_or("an unknown device")), "secondary"))
                    }
                }
            }
        }
        (view::form("/account/sessions/others", token, "Sign out other devices", html! {
            (field(form, "others-", Input::new("password", "Your password", "password", "current-password")))
        }))
    }
    }
}

/// The tokens (`GET /tokens`) with their revoke buttons, a token just made (shown this once), and
/// the form that makes one.
pub(crate) fn tokens_section(token: &str, tokens: Option<&[Value]>, new_token: Option<&Value>, form: &Form) -> Markup {
    html! {
    section aria-labelledby="tokens-h" {
        h2 #tokens-h { "API tokens" }
        @if let Some(t) = new_token {
            div.notice role="status" {
                p { "Your new token " strong { (t["name"].as_str().unwrap_or_default()) } ". Copy it now: it will not be shown again." }
            }
            code.secret #new-token { (t["token"].as_str().unwrap_or_default()) }
        }
        @if tokens.is_none() { (unreadable("tokens")) }
        ul.list {
            @for t in tokens.unwrap_or_default() {
                li {
                    span {
                        strong { (t["name"].as_str().unwrap_or_default()) } br;
                        span.meta {
                            (abilities(&t["abilities"]))
                            " · " (t["expires_at"].as_str().map(|_| format!("expires {}", when(&t["expires_at"]))).unwrap_or_else(|| "never expires".into()))
                            " · " (t["last_used_at"].as_str().map(|_| format!("last used {}", when(&t["last_used_at"]))).unwrap_or_else(|| "never used".into()))
                        }
                    }
                    (button_form(&format!("/account/tokens/{}/revoke", t["id"].as_str().unwrap_or_default()), token,
                        "Revoke", &format!("Revoke the token {}", t["name"].as_str().unwrap_or_default()), "secondary"))
                }
            }
        }
        (view::form("/account/tokens", token, "Create token", html! {
            (field(form, "token-", Input::new("name", "Token name", "text", "off")))
            (field(form, "token-", Input::new("abilities", "Abilities", "text", "off").optional()
                .hint("Comma-separated, such as read, write. Leave empty for every ability.")))
            (expiry_select(form))
            (field(form, "token-", Input::new("password", "Your password", "password", "current-password").optional()
                .hint("Needed for a token with every ability, one that can make tokens or hand off, one that never expires or lives longer than 30 days.")))
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

fn abilities(v: &Value) -> String {
    let all: Vec<&str> = v.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if all.is_empty() || all == ["*"] { "every ability".into() } else { all.join(", ") }
}

/// An RFC 3339 time as `2026-11-26 18:40 UTC`.
fn when(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}
