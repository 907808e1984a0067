//! The account's profile (Fortify's `UpdateUserProfileInformation`): its display name. The
//! address has its own flow ([`crate::services::email_change`]).

use crate::services::auth::{Auth, AuthError};
use crate::tables::events::{EventBody, UserProfileUpdated};
use crate::tables::users::{DisplayName, Marks, User, UserId};

/// `PUT /user/profile-information`: the user's display name. `None` when the user is gone (a
/// credential whose user was deleted is no credential).
pub async fn update_profile(auth: &Auth, user: &UserId, name: &DisplayName) -> Result<Option<User>, AuthError> {
    let dispatcher = auth.dispatcher();
    let body = EventBody::UserProfileUpdated(UserProfileUpdated { name: Some(name.as_str().to_owned()) });
    let event = crate::services::events::promise(&dispatcher, user, body).await?;
    let marks = Marks::default().and_events(std::slice::from_ref(&event));
    let updated = auth.stores().users.update_name_noting(user, name, marks, auth.now()).await?;
    if let Some(u) = &updated {
        tracing::info!(event = "profile_updated", user_id = %u.id);
    }
    Ok(updated)
}
