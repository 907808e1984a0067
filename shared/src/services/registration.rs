//! The registration flow (`POST /register`, the register page): the account and its first session
//! ([`Auth::register`]), then the mail with the verification link.

use crate::queue::Dispatcher;
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::email_verification::registration_job;
use crate::tables::sessions::SessionId;
use crate::tables::users::{DisplayName, User};
use crate::values::email::Email;
use crate::values::password::NewPassword;

/// Registers `email` and opens its first session, then queues the verification mail. The account
/// exists whether or not the mail could be queued (a link that could not be is one resend away);
/// a retry of a registration whose answer was lost is answered as the first attempt was, and
/// queues the same job again, which mails once.
pub async fn register(
    auth: &Auth,
    dispatcher: &Dispatcher,
    name: DisplayName,
    email: Email,
    password: NewPassword,
    meta: &ClientMeta,
) -> Result<(User, SessionId), AuthError> {
    let (user, session) = auth.register(name, email, password, meta).await?;
    if let Err(e) = dispatcher.dispatch(registration_job(auth.config(), &user.id)).await {
        tracing::error!(event = "verification_mail_not_queued", user_id = %user.id, error = %e);
    }
    Ok((user, session))
}
