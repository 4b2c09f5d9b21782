//! Email delivery of survey invitations. When an SMTP relay is configured, pending email
//! invitations are sent as plain-text messages with the survey link and marked delivered
//! (or failed, with the relay's answer). Without one they wait in the outbox for an
//! integration to deliver.
//!
//! cxm speaks plain SMTP to a relay (a local MTA or the provider's relay host on a private
//! network); TLS and authentication to the outside world are the relay's job.

use std::collections::HashMap;

use cxm_domain::survey::SurveyDefinition;
use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};

use crate::App;

/// Where and how to send mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub host: String,
    pub port: u16,
    /// The From header, e.g. `Acme <surveys@acme.example>`.
    pub from: String,
    /// The public base URL survey links are made absolute with, e.g. `https://cx.acme.example`.
    pub public_url: String,
}

impl MailConfig {
    /// Parses `smtp://host[:port]` (port 25 by default).
    pub fn parse(url: &str, from: &str, public_url: &str) -> Result<MailConfig, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("smtp url must start with smtp:// (got {url:?})"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("smtp url has a bad port: {p:?}"))?,
            ),
            None => (rest, 25),
        };
        if host.is_empty() {
            return Err("smtp url has no host".into());
        }
        from.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("mail from {from:?} is not an address: {e}"))?;
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(format!(
                "public url must start with http:// or https:// (got {public_url:?})"
            ));
        }
        Ok(MailConfig {
            host: host.to_string(),
            port,
            from: from.to_string(),
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }
}

/// The invitation email: plain text, the survey's name as subject, the link on its own line.
pub fn invitation_message(
    cfg: &MailConfig,
    to: &str,
    survey_name: &str,
    link: &str,
) -> Result<Message, String> {
    let body = format!(
        "Hello,\n\nwe would like to hear how it went. It takes a minute:\n\n{}{link}\n\n\
         The link is yours alone and works once. Thank you!\n",
        cfg.public_url
    );
    plain_message(cfg, to, survey_name, body)
}

/// Sends one tenant's pending survey invitations and queued emails. It runs per tenant, so
/// in a cluster the tenant's partition owner is its one sender: no email goes out twice,
/// and the tenants' mail is spread over the nodes.
pub async fn send_pending(
    st: &App,
    cfg: &MailConfig,
    transport: &SmtpTransport,
    tenant: &str,
) -> crate::error::AppResult<()> {
    let t = tenant.to_string();
    let pending = st
        .store
        .run(move |s| s.list_invitations(&t, Some("pending"), None, 100))
        .await?;
    let mut names: HashMap<(String, i64), String> = HashMap::new();
    for inv in pending.into_iter().filter(|i| i.channel == "email") {
        let key = (inv.survey_id.clone(), inv.version);
        if !names.contains_key(&key) {
            let (t, sid, v) = (tenant.to_string(), inv.survey_id.clone(), inv.version);
            let name = st
                .store
                .run(move |s| s.survey(&t, &sid, Some(v)))
                .await?
                .and_then(|(_, d)| serde_json::from_str::<SurveyDefinition>(&d).ok())
                .map_or_else(|| "Your opinion".to_string(), |d| d.name);
            names.insert(key.clone(), name);
        }
        let outcome = match (inv.identifier.strip_prefix("email:"), &inv.url) {
            (Some(to), Some(link)) => {
                match deliver(transport, invitation_message(cfg, to, &names[&key], link)).await {
                    Some(r) => r,
                    None => return Ok(()),
                }
            }
            (None, _) => Err("the customer has no email address".to_string()),
            (_, None) => Err("the invitation has no link".to_string()),
        };
        let (status, detail) = match outcome {
            Ok(d) => ("delivered", d),
            Err(e) => ("failed", e),
        };
        let (t, id) = (tenant.to_string(), inv.id);
        st.store
            .run(move |s| s.mark_invitation(&t, id, status, &detail))
            .await?;
        tracing::info!(tenant = %tenant, invitation = id, status, "survey invitation emailed");
    }
    send_outbound(st, cfg, transport, tenant).await
}

/// Hands a message to the relay: the relay's answer, the reason it cannot be sent, or None
/// when the relay is busy or down (the message stays pending and is tried again later).
async fn deliver(
    transport: &SmtpTransport,
    msg: Result<Message, String>,
) -> Option<Result<String, String>> {
    let msg = match msg {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    let t = transport.clone();
    match tokio::task::spawn_blocking(move || t.send(&msg)).await {
        Ok(Ok(r)) => Some(Ok(format!("smtp {}", r.code()))),
        Ok(Err(e)) if e.is_transient() => {
            tracing::warn!(error = %e, "smtp relay deferred");
            None
        }
        Ok(Err(e)) => Some(Err(e.to_string())),
        Err(e) => Some(Err(e.to_string())),
    }
}

/// A plain-text message from the configured sender.
fn plain_message(
    cfg: &MailConfig,
    to: &str,
    subject: &str,
    body: String,
) -> Result<Message, String> {
    let to = to
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("{to:?} is not an email address: {e}"))?;
    let from = cfg
        .from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| e.to_string())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())
}

/// Sends a tenant's queued emails other than invitations (a closed ticket's "it is fixed").
async fn send_outbound(
    st: &App,
    cfg: &MailConfig,
    transport: &SmtpTransport,
    tenant: &str,
) -> crate::error::AppResult<()> {
    let t = tenant.to_string();
    let pending = st
        .store
        .run(move |s| s.list_mail(&t, Some("pending"), None, 100))
        .await?;
    for m in pending {
        let Some(outcome) = deliver(
            transport,
            plain_message(cfg, &m.to, &m.subject, m.body.clone()),
        )
        .await
        else {
            return Ok(());
        };
        let (status, detail) = match outcome {
            Ok(d) => ("sent", d),
            Err(e) => ("failed", e),
        };
        let (t, id) = (tenant.to_string(), m.id);
        st.store
            .run(move |s| s.mark_mail(&t, id, status, &detail))
            .await?;
        tracing::info!(tenant, mail = id, kind = %m.kind, status, "email sent");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let c = MailConfig::parse(
            "smtp://127.0.0.1:2525",
            "Acme <surveys@acme.example>",
            "https://cx.acme.example/",
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.public_url.as_str()),
            ("127.0.0.1", 2525, "https://cx.acme.example")
        );
        assert_eq!(
            MailConfig::parse("smtp://relay", "a@b.co", "http://x")
                .unwrap()
                .port,
            25
        );
        assert!(MailConfig::parse("smtps://relay", "a@b.co", "http://x").is_err());
        assert!(MailConfig::parse("smtp://relay:port", "a@b.co", "http://x").is_err());
        assert!(MailConfig::parse("smtp://relay", "not an address", "http://x").is_err());
        assert!(MailConfig::parse("smtp://relay", "a@b.co", "cx.example").is_err());
    }

    #[test]
    fn the_message_carries_the_absolute_link() {
        let c = MailConfig::parse(
            "smtp://relay",
            "Acme <surveys@acme.example>",
            "https://cx.acme.example",
        )
        .unwrap();
        let m = invitation_message(&c, "ada@example.com", "How did we do?", "/s/tok123").unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Subject: How did we do?"));
        assert!(raw.contains("To: ada@example.com"));
        assert!(raw.contains("https://cx.acme.example/s/tok123"));
        assert!(invitation_message(&c, "nope", "x", "/s/t").is_err());
    }
}
