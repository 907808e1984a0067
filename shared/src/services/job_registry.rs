//! Every job gatehouse defines, registered on one worker: the job-worker Lambda's and the local
//! server's (`gatehouse serve`), so both run the same jobs.

use crate::mail::Mailer;
use crate::queue::{Dispatcher, Worker, WorkerSettings};
use crate::services::deliveries::Outbound;
use crate::{Config, Stores, schema};
use std::sync::Arc;

/// The worker with every job gatehouse defines registered, mailing through `mailer` and sending
/// events through `outbound` (webhooks, and the EventBridge bus when there is one). Add your own
/// with [`Worker::register`].
pub fn worker(stores: Stores, config: Arc<Config>, mailer: Arc<dyn Mailer>, outbound: Outbound) -> Worker {
    let dispatcher = Dispatcher::for_config(stores.clone(), &config);
    let settings = WorkerSettings::new(config.names.queue(schema::JOBS_QUEUE.logical), config.failed_job_retention);
    let mut w = Worker::new(stores, dispatcher, settings);
    let verification =
        crate::services::email_verification::SendVerification { config: config.clone(), mailer: mailer.clone() };
    w.register(crate::services::email_verification::SEND_VERIFICATION, verification);
    let deleted = crate::services::account_deletion::SendAccountDeleted { mailer: mailer.clone() };
    w.register(crate::services::account_deletion::SEND_ACCOUNT_DELETED, deleted);
    let finish = crate::services::account_deletion::FinishDeletion { config: config.clone() };
    w.register(crate::services::account_deletion::FINISH_DELETION, finish);
    use crate::services::email_change::{SEND_CONFIRMATION, SEND_NOTICE, SendConfirmation, SendNotice};
    w.register(SEND_CONFIRMATION, SendConfirmation { config: config.clone(), mailer: mailer.clone() });
    w.register(SEND_NOTICE, SendNotice { mailer: mailer.clone() });
    let second_factor = crate::services::notices::SendNotice { mailer: mailer.clone() };
    w.register(crate::services::notices::SEND_NOTICE, second_factor);
    use crate::services::{email_confirmation as confirm, email_link as link};
    w.register(link::SEND_SIGN_IN_LINK, link::SendSignInLink { config: config.clone(), mailer: mailer.clone() });
    w.register(
        confirm::SEND_CONFIRMATION_CODE,
        confirm::SendConfirmationCode { config: config.clone(), mailer: mailer.clone() },
    );
    use crate::services::federation::notice::{SEND_IDENTITY_NOTICE, SendIdentityNotice};
    w.register(SEND_IDENTITY_NOTICE, SendIdentityNotice { mailer: mailer.clone() });
    crate::services::events::register_jobs(&mut w, config.clone(), outbound.bus.clone());
    crate::services::deliveries::register_jobs(&mut w, config.clone(), outbound.post);
    crate::services::password_broker::register_jobs(&mut w, config, mailer);
    w.register(crate::services::revocation::REVOKE_LATER, crate::services::revocation::RevokeLater);
    w
}
