//! Signed deliveries for `scripts/webhook-test`: prints, as JSON, two fresh secrets and deliveries
//! signed now by `gatehouse::values::webhook_signature` (event-shaped, non-ASCII, large, empty and
//! pretty-printed bodies, an id of every allowed punctuation character, and both orders of a
//! rotation's two signatures), plus deliveries signed outside the five-minute window either way.
//! `tests/webhooks` verifies each with the `standardwebhooks` library from npm, which no one here
//! wrote, and checks that it refuses the forged, foreign-secret and out-of-window ones.

use gatehouse::values::webhook_signature::{WebhookId, WebhookSecret, headers};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn delivery(label: &str, id: &str, at: i64, body: &str, signers: &[(&str, &WebhookSecret)]) -> Value {
    let id = WebhookId::parse(id).expect("a valid id");
    let secrets: Vec<&WebhookSecret> = signers.iter().map(|(_, s)| *s).collect();
    let headers: serde_json::Map<String, Value> =
        headers(&id, at, body.as_bytes(), &secrets).into_iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect();
    json!({
        "label": label,
        "signed_by": signers.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "headers": headers,
        "body": body,
    })
}

fn main() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs() as i64;
    let secret = WebhookSecret::generate();
    let rotation = WebhookSecret::generate();
    let one = [("secret", &secret)];
    let evt = || format!("evt_{}", uuid::Uuid::now_v7());

    let event = json!({
        "id": evt(), "type": "user.deleted", "version": 1, "user_id": uuid::Uuid::new_v4(), "seq": 42,
        "occurred_at": "2026-01-02T03:04:05.678Z", "data": { "revoked": { "sessions": 3, "tokens": 1 } },
    })
    .to_string();
    let unicode = json!({ "name": "Zoë Ångström 日本語 🔐", "note": "line one\nline \"two\"\t\u{2028}" }).to_string();
    let large =
        json!({ "items": (0..4000).map(|i| json!({ "i": i, "pad": "x".repeat(8) })).collect::<Vec<_>>() }).to_string();
    let pretty = "{\n  \"type\": \"session.created\",\n\t\"data\": { \"new_device\": true }\n}\n";
    let punctuation = "msg_!\"#$%&'()*+,-/:;<=>?@[\\]^_`{|}~0123456789";

    let deliveries = vec![
        delivery("an event", &evt(), now, &event, &one),
        delivery("a non-ASCII body", &evt(), now, &unicode, &one),
        delivery("a large body", &evt(), now, &large, &one),
        delivery("a pretty-printed body", &evt(), now, pretty, &one),
        delivery("an empty body", &evt(), now, "", &one),
        delivery("an id of every allowed punctuation character", punctuation, now, "{}", &one),
        delivery(
            "a rotation, old secret first",
            &evt(),
            now,
            &event,
            &[("secret", &secret), ("rotation_secret", &rotation)],
        ),
        delivery(
            "a rotation, new secret first",
            &evt(),
            now,
            &event,
            &[("rotation_secret", &rotation), ("secret", &secret)],
        ),
    ];
    let out_of_window = vec![
        delivery("ten minutes old", &evt(), now - 600, &event, &one),
        delivery("ten minutes ahead", &evt(), now + 600, &event, &one),
    ];
    let vectors = json!({
        "secret": secret.expose(),
        "rotation_secret": rotation.expose(),
        "signed_at": now,
        "deliveries": deliveries,
        "out_of_window": out_of_window,
    });
    println!("{vectors:#}");
}
