//! The sign-in flow: the password step ([`Auth::check_credentials`]), then the second factor when
//! the account has one ([`crate::services::two_factor::challenge`]), then a session.

use crate::services::auth::sessions::Opened;
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::two_factor::{ChallengeToken, Pending};
use crate::tables::users::User;
use crate::values::email::Email;
use crate::values::password::PasswordAttempt;

/// What the password step of a sign-in gave.
#[derive(Debug)]
pub enum SignIn {
    Passed(Box<User>),
    /// The user has a second factor: complete with `POST /two-factor-challenge`.
    SecondFactor(ChallengeToken),
}

/// What `/login` gave.
#[derive(Debug)]
pub enum Login {
    Session(Box<User>, Opened),
    SecondFactor(ChallengeToken),
}

impl Auth {
    /// The password step of every sign-in (`/login`, `/tokens/issue`): checks the credentials
    /// ([`Auth::check_credentials`]); a user with a second factor gets a challenge for `pending`
    /// instead ([`crate::services::two_factor::challenge`]), so nothing is issued on a password alone.
    pub async fn sign_in(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
        pending: Pending,
    ) -> Result<SignIn, AuthError> {
        let user = self.check_credentials(email, attempt, meta, device_cookie).await?;
        if user.two_factor.enabled() {
            return Ok(SignIn::SecondFactor(crate::services::two_factor::challenge(self, &user, pending, meta).await?));
        }
        Ok(SignIn::Passed(Box::new(user)))
    }

    /// `/login`: the password step, then a session under the version the password was checked
    /// against (if the password changed meanwhile, nothing is issued and the answer is the same
    /// as for a wrong password) — or the second-factor challenge.
    pub async fn login(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        remember: bool,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
    ) -> Result<Login, AuthError> {
        let pending = Pending::Session { remember };
        match self.sign_in(email, attempt, meta, device_cookie, pending).await? {
            SignIn::SecondFactor(challenge) => Ok(Login::SecondFactor(challenge)),
            SignIn::Passed(user) => {
                let opened = self.open_session(&user, remember, meta, device_cookie).await?;
                Ok(Login::Session(user, opened))
            }
        }
    }
}
