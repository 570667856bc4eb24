//! moto 5.2 keeps the SMS it "sent" in `sns.SMS` as objects
//! `{phone_number, message, message_id}`; `harness::moto::sent_sms` reads
//! `[phone, text]` pairs. This reads both.

use serde_json::Value;

/// The texts moto's SNS sent to `phone`, oldest first.
pub(crate) async fn sms_to(phone: &str) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let data = harness::moto::moto_data().await;
    if let Some(Value::Array(items)) = data.get("sns").and_then(|s| s.get("SMS")) {
        for item in items {
            if let (Some(p), Some(m)) = (
                item.get("phone_number").and_then(Value::as_str),
                item.get("message").and_then(Value::as_str),
            ) {
                out.push((p.to_owned(), m.to_owned()));
            }
        }
    }
    if out.is_empty() {
        out = harness::moto::sent_sms().await;
    }
    out.into_iter()
        .filter(|(p, _)| p == phone)
        .map(|(_, text)| text)
        .collect()
}
