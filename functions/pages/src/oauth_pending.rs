//! An authorization request waiting for its sign-in: kept in a short-lived `__Host-` cookie (its
//! own parameters alone), and given back once the person is signed in (every sign-in, password,
//! second factor or passkey, lands on `/account`, which sends the browser back to it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::services::oauth::authorize::PARAMETERS;
use gatehouse_http::Call;
use lambda_http::http::HeaderValue;

/// How long a pending authorization request waits for its sign-in.
const PENDING_SECONDS: i64 = 600;

pub(crate) fn pending_cookie_name(call: &Call<'_>) -> String {
    crate::csrf::page_cookie_name(&call.app.config.session, "oauth")
}

/// The query's parameters, each as given (a repeated one stays repeated, to be refused).
pub(crate) fn query_params(call: &Call<'_>) -> Vec<(String, String)> {
    let q = call.req.uri().query().unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The pending request's own entry: when a fresh sign-in was asked for (epoch seconds).
const SINCE: &str = "__signed_in_since";

/// The cookie that keeps the authorization request `params` (its own parameters alone) through
/// the sign-in; `fresh`: a sign-in made after now is asked for (`prompt=login`, `max_age`).
pub(crate) fn cookie(call: &Call<'_>, params: Vec<(String, String)>, fresh: bool) -> HeaderValue {
    let mut kept: Vec<(String, String)> =
        params.into_iter().filter(|(k, _)| PARAMETERS.contains(&k.as_str())).collect();
    if fresh {
        kept.push((SINCE.into(), call.app.stores.clock.now().timestamp().to_string()));
    }
    let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&kept).unwrap_or_default());
    gatehouse_http::set_cookie(&pending_cookie_name(call), &value, "Lax", None, Some(PENDING_SECONDS))
}

/// Removes `key` from `params`, answering its first value.
fn take(params: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let found = params.iter().position(|(k, _)| k == key).map(|i| params[i].1.clone());
    params.retain(|(k, _)| k != key);
    found
}

/// Where the browser goes after signing in, when an authorization request was waiting: the
/// authorization endpoint again, the request as it was (but `prompt=login`, just satisfied).
pub(crate) fn pending_return(call: &Call<'_>) -> Option<(String, HeaderValue)> {
    let raw = call.cookie(&pending_cookie_name(call))?;
    let mut params: Vec<(String, String)> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    // A fresh sign-in was asked for (`prompt=login`, or a session past `max_age`): from here on
    // it is "signed in since the request was made", a `max_age` the old session cannot meet.
    if let Some(since) = take(&mut params, SINCE).and_then(|v| v.parse::<i64>().ok()) {
        let elapsed = (call.app.stores.clock.now().timestamp() - since).max(0) + 1;
        let max_age =
            take(&mut params, "max_age").and_then(|m| m.parse::<i64>().ok()).map_or(elapsed, |m| m.min(elapsed));
        params.retain(|(k, v)| !(k == "prompt" && v == "login"));
        params.push(("max_age".into(), max_age.to_string()));
    }
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    Some((format!("/account/oauth/authorize?{query}"), crate::sign_in::clear_cookie(&pending_cookie_name(call))))
}
