//! Outbound webhooks, signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), queued in the
//! store with the action that caused them, and delivered by a worker that retries with
//! backoff and keeps every attempt in the delivery log.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use cxm_store::{Store, WebhookDelivery, WebhookEndpoint};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;

/// What cxm sends.
pub const EVENT_TYPES: &[&str] = &[
    "alert.opened",
    "ticket.created",
    "ticket.state_changed",
    "ticket.close_refused",
    "ticket.closed",
    "ticket.sla_at_risk",
    "ticket.sla_missed",
    "customer.loop_closed",
    "decision.reviewed",
    // opt-in: only endpoints that name it receive it (it carries a one-time code)
    "step_up.code",
];

/// Attempts before a delivery is given up (the log keeps it as failed).
pub const MAX_ATTEMPTS: i64 = 8;

/// `v1,<signature>` for a message, per Standard Webhooks; `secret` is `whsec_<base64 key>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| format!("webhook secret is not base64: {e}"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// Queues an event for the tenant's endpoints. A failure to queue is logged, not raised:
/// the action it reports has already happened and must not be undone by its notification.
pub fn emit(store: &dyn Store, tenant: &str, event_type: &str, data: &impl Serialize) {
    let payload = json!({"type": event_type, "timestamp": Utc::now().to_rfc3339(), "data": data});
    if let Err(e) = store.queue_webhook(
        tenant,
        event_type,
        &payload,
        None,
        Utc::now().timestamp_millis(),
    ) {
        tracing::error!(tenant, event_type, error = %e, "webhook could not be queued");
    }
}

/// The delay before attempt `attempts + 1`: base × 6^attempts, at most six hours.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let factor = 6u32.saturating_pow(attempts.clamp(0, 10) as u32);
    base.saturating_mul(factor)
        .min(Duration::from_secs(6 * 3600))
}

pub async fn deliver(st: Arc<App>, d: WebhookDelivery) {
    let (t, eid) = (d.tenant_id.clone(), d.endpoint_id.clone());
    let endpoint = st.store.run(move |s| s.webhook(&t, &eid)).await;
    let now = Utc::now();
    let outcome: Result<(), (Option<i64>, String)> = match endpoint {
        Ok(Some(e)) => {
            let mut payload = d.payload.clone();
            if let (Some(serde_json::Value::Object(secret)), Some(data)) = (
                &d.secret,
                payload.get_mut("data").and_then(|v| v.as_object_mut()),
            ) {
                data.extend(secret.clone());
            }
            let body = payload.to_string();
            let ts = now.timestamp();
            match (
                sign(&e.secret, &d.message_id, ts, body.as_bytes()),
                literal_allowed(&st, &e.url),
            ) {
                (Err(err), _) => Err((None, err)),
                (_, Err(err)) => Err((None, err)),
                (Ok(sig), Ok(())) => {
                    let sent = st
                        .webhook_client
                        .post(&e.url)
                        .header("content-type", "application/json")
                        .header("webhook-id", &d.message_id)
                        .header("webhook-timestamp", ts.to_string())
                        .header("webhook-signature", sig)
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => Ok(()),
                        Ok(r) if r.status().is_redirection() => Err((
                            Some(i64::from(r.status().as_u16())),
                            format!("answered {}; redirects are not followed", r.status()),
                        )),
                        Ok(r) => Err((
                            Some(i64::from(r.status().as_u16())),
                            format!("answered {}", r.status()),
                        )),
                        // the connector's own words would tell a closed port from a filtered
                        // one; the log says only that nothing answered
                        Err(e) if is_refused(&e) => Err((
                            None,
                            "not sent: the endpoint's address is on a network cxm may not reach"
                                .into(),
                        )),
                        Err(_) => Err((
                            None,
                            "could not deliver: no answer from the endpoint".into(),
                        )),
                    }
                }
            }
        }
        Ok(None) => Err((None, "endpoint removed".into())),
        Err(e) => {
            tracing::warn!(error = %e, "webhook endpoint lookup failed; will retry");
            return;
        }
    };
    let now_ms = Utc::now().timestamp_millis();
    let (status, next, code, error) = match outcome {
        Ok(()) => ("delivered", now_ms, Some(200), None),
        Err((code, err)) => {
            let gave_up = d.attempts + 1 >= MAX_ATTEMPTS || err == "endpoint removed";
            let next =
                now_ms + backoff(st.config.webhook_retry_base, d.attempts).as_millis() as i64;
            if gave_up {
                tracing::warn!(delivery = d.id, event = %d.event_type, error = %err, "webhook delivery failed for good");
            }
            (
                if gave_up { "failed" } else { "pending" },
                next,
                code,
                Some(err),
            )
        }
    };
    let id = d.id;
    if let Err(e) = st
        .store
        .run(move |s| s.settle_webhook(id, status, next, code, error.as_deref(), now_ms))
        .await
    {
        tracing::warn!(delivery = id, error = %e, "webhook attempt could not be recorded");
    }
}

/// An endpoint whose host is an address (not a name) is checked here: the client's resolver
/// only sees names. It was checked when saved; this holds if the allowed networks changed.
pub fn literal_allowed(st: &App, url: &str) -> Result<(), String> {
    let Ok(u) = reqwest::Url::parse(url) else {
        return Err("not sent: the endpoint url no longer parses".into());
    };
    let ip = match u.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        _ => return Ok(()),
    };
    st.outbound
        .check(ip)
        .map_err(|_| "not sent: the endpoint's address is on a network cxm may not reach".into())
}

/// Whether a send failed because the guard refused every address of the endpoint's name.
pub fn is_refused(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<crate::outbound::Refused>() {
            return true;
        }
        source = s.source();
    }
    false
}

// ---------------------------------------------------------------- API

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    /// Event types to send (default: all); see `EVENT_TYPES`.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret, shown only now.
    pub secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    pub webhooks: Vec<WebhookEndpoint>,
    pub event_types: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryLog {
    pub deliveries: Vec<WebhookDelivery>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // the example in the Standard Webhooks specification
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(sign("whsec_!!", "m", 1, b"").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_secs(5);
        assert_eq!(backoff(b, 0), Duration::from_secs(5));
        assert_eq!(backoff(b, 1), Duration::from_secs(30));
        assert_eq!(backoff(b, 2), Duration::from_secs(180));
        assert_eq!(backoff(b, 7), Duration::from_secs(6 * 3600));
    }
}
