//! Mail through Amazon SES v2.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use gatehouse::mail::{Mail, MailError, Mailer};

pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(sdk: &aws_config::SdkConfig, from: String) -> Self {
        Self { client: Client::new(sdk), from }
    }
}

fn content(s: &str) -> Result<Content, MailError> {
    Content::builder().data(s).charset("UTF-8").build().map_err(|e| MailError::Rejected(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.text)?).build())
            .build();
        let res = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => {
                let code = se.err().code().unwrap_or("Unknown").to_owned();
                let msg = format!("{code}: {}", se.err().message().unwrap_or(""));
                match code.as_str() {
                    "TooManyRequestsException"
                    | "LimitExceededException"
                    | "InternalFailure"
                    | "ServiceUnavailable" => Err(MailError::Transient(msg)),
                    _ => Err(MailError::Rejected(msg)),
                }
            }
            Err(e) => Err(MailError::Transient(aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string())),
        }
    }
}
