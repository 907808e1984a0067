//! The words for the notices a redirect names (`?notice=`).

use gatehouse_http::Call;

/// The words for a notice named in a redirect's `?notice=` (only these: no text from the URL is
/// ever shown).
pub(crate) fn notice(call: &Call<'_>) -> Option<String> {
    let text = match call.query("notice")?.as_str() {
        "confirmation-sent" => "A code is on its way to your email: type it under \u{201c}Confirm it's you\u{201d}.",
        "confirmed-by-email" => {
            let window = call.app.config.session.password_timeout.num_seconds();
            let window = crate::api::wait(u64::try_from(window).unwrap_or_default());
            return Some(format!("Confirmed: for the next {window} you can change how you sign in."));
        }
        "signed-out" => "You have signed out.",
        "oauth-sign-in" => "Sign in to continue to the application that sent you here.",
        "registered" => "Welcome! We have emailed you a link to verify your address.",
        "password-reset" => gatehouse_password_reset::RESET_MESSAGE,
        "verified" => "Thank you: your email address is verified.",
        "verify-sign-in" => "Sign in to finish verifying your email address.",
        "profile" => "Your profile was saved.",
        "password" => "Your password was changed, and your other devices were signed out.",
        "verification-sent" => "A new verification link is on its way to your inbox.",
        "session-ended" => "That session was signed out.",
        "others-signed-out" => "Your other devices were signed out.",
        "token-revoked" => "The token was revoked; it no longer works.",
        "two-factor-disabled" => "Two-factor authentication is off.",
        "passkey-added" => "Your passkey was added: it signs you in on its own.",
        "passkey-removed" => "The passkey was removed; it no longer signs you in.",
        "app-disconnected" => "The app was disconnected; it must ask you again to use your account.",
        "provider-linked" => "The provider was connected: it now signs you in.",
        "provider-unlinked" => "The provider was disconnected; it no longer signs you in.",
        "deleted" => "Your account was deleted.",
        _ => return None,
    };
    Some(text.to_owned())
}
