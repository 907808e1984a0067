//! How every page looks: one layout, labelled fields with their errors beside them, forms that
//! carry their CSRF token (respond.rs has what every response carries).
//!
//! Templates are maud: HTML written as Rust, checked by the compiler (a missing variable or an
//! unclosed element does not build), every interpolation escaped unless it is marked `PreEscaped`
//! (nothing here is), no template files to ship or find at run time.

use crate::csrf;
use maud::{DOCTYPE, Markup, html};
use std::collections::BTreeMap;

pub use crate::respond::{CSP, SCRIPT_NAME, STYLE, STYLE_NAME, allowing_form_target, html, redirect, stylesheet};

/// What a page needs besides its body.
pub struct Frame<'a> {
    pub app_name: &'a str,
    pub title: &'a str,
    /// Whether to show the signed-in navigation.
    pub signed_in: bool,
    /// Said politely to screen readers (`role="status"`).
    pub notice: Option<String>,
    /// Said at once (`role="alert"`).
    pub error: Option<String>,
}

pub fn layout(f: &Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (f.title) " · " (f.app_name) }
                link rel="stylesheet" href={ "/account/assets/" (*STYLE_NAME) };
                script src={ "/account/assets/" (*SCRIPT_NAME) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/account" { (f.app_name) }
                    nav aria-label="Account" {
                        @if f.signed_in {
                            a href="/account" { "Account" }
                        } @else {
                            a href="/account/sign-in" { "Sign in" }
                            a href="/account/register" { "Register" }
                        }
                    }
                }
                main #main {
                    h1 { (f.title) }
                    div.notice role="status" aria-live="polite" {
                        @if let Some(n) = &f.notice { p { (n) } }
                    }
                    div.alert role="alert" aria-live="assertive" {
                        @if let Some(e) = &f.error { p { (e) } }
                    }
                    (body)
                }
            }
        }
    }
}

/// A form's values (never a password's) and each field's errors.
#[derive(Debug, Default)]
pub struct Form {
    pub values: BTreeMap<String, String>,
    pub errors: BTreeMap<String, Vec<String>>,
}

impl Form {
    /// This form's values and errors over `other`'s.
    pub fn merge(mut self, other: &Form) -> Form {
        self.values.extend(other.values.clone());
        self.errors.extend(other.errors.clone());
        self
    }

    pub fn with_value(mut self, name: &str, value: Option<&str>) -> Self {
        if let Some(v) = value {
            self.values.insert(name.to_owned(), v.to_owned());
        }
        self
    }
}

/// One kind of input.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub autocomplete: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
}

impl<'a> Input<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self { name, label, kind, autocomplete, required: true, hint: None }
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }
}

/// A labelled input; its errors beside it, tied to it by `aria-describedby`. `id_prefix` keeps ids
/// unique when one page holds several forms with a field of the same name.
pub fn field(form: &Form, id_prefix: &str, i: Input<'_>) -> Markup {
    let id = format!("{id_prefix}{}", i.name);
    let errors = form.errors.get(i.name).map(Vec::as_slice).unwrap_or_default();
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described: Vec<&str> = [(i.hint.is_some(), hint_id.as_str()), (!errors.is_empty(), error_id.as_str())]
        .into_iter()
        .filter_map(|(on, id)| on.then_some(id))
        .collect();
    let value = (i.kind != "password").then(|| form.values.get(i.name)).flatten();
    html! {
        div.field {
            label for=(id) { (i.label) }
            @if let Some(h) = i.hint { p.hint id=(hint_id) { (h) } }
            input id=(id) name=(i.name) type=(i.kind) autocomplete=(i.autocomplete) value=[value]
                required[i.required] aria-invalid=[(!errors.is_empty()).then_some("true")]
                aria-describedby=[(!described.is_empty()).then(|| described.join(" "))];
            @if !errors.is_empty() {
                p.error id=(error_id) { @for e in errors { (e) " " } }
            }
        }
    }
}

/// A form posting to `action` with the CSRF token.
pub fn form(action: &str, token: &str, button: &str, inner: Markup) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name=(csrf::FIELD) value=(token);
            (inner)
            button type="submit" { (button) }
        }
    }
}

/// A one-button form (sign out this session, revoke this token), its purpose in its label.
pub fn button_form(action: &str, token: &str, button: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name=(csrf::FIELD) value=(token);
            button type="submit" class=(class) aria-label=(label) { (button) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_labelled_escaped_and_keep_no_password() {
        let mut form = Form::default().with_value("email", Some("\"><script>x</script>"));
        form.values.insert("password".into(), "hunter2".into());
        form.errors.insert("email".into(), vec!["Must be a valid email address.".into()]);
        let email = field(&form, "", Input::new("email", "Email", "email", "email")).into_string();
        assert!(email.contains(r#"<label for="email">Email</label>"#), "{email}");
        assert!(email.contains("&quot;&gt;&lt;script&gt;"), "escaped: {email}");
        assert!(!email.contains("<script>"));
        assert!(email.contains(r#"aria-invalid="true""#) && email.contains(r#"aria-describedby="email-error""#));
        let pw = field(&form, "", Input::new("password", "Password", "password", "current-password")).into_string();
        assert!(!pw.contains("hunter2"), "a password is never sent back: {pw}");
    }

    #[test]
    fn the_stylesheet_is_served_only_under_its_hash_and_cached_for_a_year() {
        let ok = stylesheet(&STYLE_NAME).unwrap();
        assert_eq!(ok.headers()[lambda_http::http::header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert!(stylesheet("style.000000000000.css").is_none());
        assert!(!CSP.contains("unsafe-inline") && CSP.contains("frame-ancestors 'none'"));
        let script = stylesheet(&SCRIPT_NAME).unwrap();
        assert_eq!(script.headers()[lambda_http::http::header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(stylesheet("passkeys.000000000000.js").is_none());
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe-eval"));
    }
}
