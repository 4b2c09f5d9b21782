//! The standard cx event taxonomy and the channel every event carries.
//!
//! Names follow Segment's spec style ("Ticket Opened"). Unknown names are kept as they are;
//! known ones get a category so later projections (journeys, signals, summaries) can give
//! them meaning without guessing from strings.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a customer interaction happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Mobile,
    Email,
    Chat,
    Voice,
    Social,
    InProduct,
    Support,
    Survey,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Web,
        Channel::Mobile,
        Channel::Email,
        Channel::Chat,
        Channel::Voice,
        Channel::Social,
        Channel::InProduct,
        Channel::Support,
        Channel::Survey,
        Channel::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Mobile => "mobile",
            Channel::Email => "email",
            Channel::Chat => "chat",
            Channel::Voice => "voice",
            Channel::Social => "social",
            Channel::InProduct => "in_product",
            Channel::Support => "support",
            Channel::Survey => "survey",
            Channel::Other => "other",
        }
    }

    /// Parses a channel name as senders write it; unknown names are `None` so the caller
    /// can fall back to derivation instead of silently filing them under `other`.
    pub fn parse(s: &str) -> Option<Channel> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "web" | "browser" => Channel::Web,
            "mobile" | "ios" | "android" | "app" => Channel::Mobile,
            "email" | "e-mail" | "mail" => Channel::Email,
            "chat" | "live_chat" | "messaging" | "sms" | "whatsapp" => Channel::Chat,
            "voice" | "phone" | "call" | "ivr" => Channel::Voice,
            "social" | "twitter" | "facebook" | "instagram" | "x" => Channel::Social,
            "in_product" | "in-product" | "inproduct" | "product" => Channel::InProduct,
            "support" | "helpdesk" | "ticket" => Channel::Support,
            "survey" => Channel::Survey,
            "other" => Channel::Other,
            _ => return None,
        })
    }
}

/// What an event means for a customer's experience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    Lifecycle,
    Billing,
    Support,
    Conversation,
    Feedback,
    Usage,
    Churn,
    Uncategorized,
}

impl EventCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            EventCategory::Lifecycle => "lifecycle",
            EventCategory::Billing => "billing",
            EventCategory::Support => "support",
            EventCategory::Conversation => "conversation",
            EventCategory::Feedback => "feedback",
            EventCategory::Usage => "usage",
            EventCategory::Churn => "churn",
            EventCategory::Uncategorized => "uncategorized",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EventCategory::Lifecycle => "Lifecycle",
            EventCategory::Billing => "Billing",
            EventCategory::Support => "Support",
            EventCategory::Conversation => "Conversation",
            EventCategory::Feedback => "Feedback",
            EventCategory::Usage => "Usage",
            EventCategory::Churn => "Churn",
            EventCategory::Uncategorized => "Activity",
        }
    }
}

/// One entry of the standard taxonomy.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct KnownEvent {
    pub name: &'static str,
    pub category: EventCategory,
    /// The channel the event implies when the sender did not say.
    #[schema(value_type = Option<Channel>)]
    pub implied_channel: Option<Channel>,
    pub description: &'static str,
}

macro_rules! known {
    ($($name:literal, $cat:ident, $chan:expr, $desc:literal;)*) => {
        /// The standard cx event names, in the order `docs/ingest.md` documents them.
        pub const KNOWN_EVENTS: &[KnownEvent] = &[
            $(KnownEvent { name: $name, category: EventCategory::$cat, implied_channel: $chan, description: $desc },)*
        ];
    };
}

known! {
    "Signed Up", Lifecycle, None, "a customer created an account";
    "Activated", Lifecycle, Some(Channel::InProduct), "a customer reached the first value moment";
    "Onboarding Completed", Lifecycle, Some(Channel::InProduct), "onboarding finished";
    "Feature Used", Usage, Some(Channel::InProduct), "a product feature was used";
    "Logged In", Usage, None, "a customer signed in";
    "Order Completed", Billing, None, "a purchase completed";
    "Payment Failed", Billing, None, "a charge failed";
    "Payment Succeeded", Billing, None, "a charge succeeded";
    "Refund Requested", Billing, None, "a customer asked for money back";
    "Refund Issued", Billing, None, "money was returned";
    "Subscription Started", Billing, None, "a paid subscription began";
    "Subscription Renewed", Billing, None, "a subscription renewed";
    "Subscription Downgraded", Billing, None, "a subscription moved to a cheaper plan";
    "Subscription Upgraded", Billing, None, "a subscription moved to a dearer plan";
    "Churn Notice", Churn, None, "a customer said they will leave or did not renew";
    "Subscription Cancelled", Churn, None, "a subscription was cancelled";
    "Ticket Opened", Support, Some(Channel::Support), "a support ticket was opened";
    "Ticket Created", Support, Some(Channel::Support), "alias of Ticket Opened used by some helpdesks";
    "Ticket Escalated", Support, Some(Channel::Support), "a ticket moved to a higher tier";
    "Ticket Reopened", Support, Some(Channel::Support), "a resolved ticket came back";
    "Ticket Resolved", Support, Some(Channel::Support), "a ticket was resolved";
    "Chat Started", Conversation, Some(Channel::Chat), "a chat conversation began";
    "Chat Ended", Conversation, Some(Channel::Chat), "a chat conversation ended";
    "Call Started", Conversation, Some(Channel::Voice), "a phone call began";
    "Call Completed", Conversation, Some(Channel::Voice), "a phone call ended";
    "Email Sent", Conversation, Some(Channel::Email), "the company emailed the customer";
    "Email Received", Conversation, Some(Channel::Email), "the customer emailed the company";
    "Social Mention", Conversation, Some(Channel::Social), "the customer mentioned the company on social media";
    "Context Viewed", Support, None, "someone serving the customer read their context in cxm (logged by the context API)";
    "Survey Shown", Feedback, Some(Channel::Survey), "a survey was displayed";
    "Survey Responded", Feedback, Some(Channel::Survey), "a survey was answered";
    "Review Posted", Feedback, None, "a public review was posted";
}

/// Looks a name up in the taxonomy, ignoring case and surrounding whitespace.
pub fn known_event(name: &str) -> Option<&'static KnownEvent> {
    let name = name.trim();
    KNOWN_EVENTS
        .iter()
        .find(|k| k.name.eq_ignore_ascii_case(name))
}

pub fn category_of(name: Option<&str>) -> EventCategory {
    name.and_then(known_event)
        .map(|k| k.category)
        .unwrap_or(EventCategory::Uncategorized)
}

/// Derives the channel of a message: an explicit `context.channel` or `properties.channel`
/// wins, then what the event name implies, then hints in the context (a mobile os or app
/// means mobile, a page or browser user agent means web). Segment's top-level `channel`
/// ("server", "client") says how it was sent, not where the customer was, so it is ignored.
pub fn derive_channel(msg: &Value, event_type: &str, name: Option<&str>) -> Channel {
    let ctx = msg.get("context");
    let explicit = ctx
        .and_then(|c| c.get("channel"))
        .or_else(|| msg.get("properties").and_then(|p| p.get("channel")))
        .and_then(Value::as_str)
        .and_then(Channel::parse);
    if let Some(c) = explicit {
        return c;
    }
    if let Some(c) = name.and_then(known_event).and_then(|k| k.implied_channel) {
        return c;
    }
    if event_type == "screen" {
        return Channel::Mobile;
    }
    if let Some(ctx) = ctx {
        if ctx.get("app").is_some()
            || ctx
                .get("os")
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|os| {
                    let os = os.to_ascii_lowercase();
                    os.contains("ios") || os.contains("android")
                })
        {
            return Channel::Mobile;
        }
        if ctx.get("page").is_some() || ctx.get("userAgent").is_some() {
            return Channel::Web;
        }
    }
    if event_type == "page" {
        return Channel::Web;
    }
    Channel::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn explicit_channel_wins_over_name() {
        let m = json!({"context": {"channel": "voice"}});
        assert_eq!(
            derive_channel(&m, "track", Some("Chat Started")),
            Channel::Voice
        );
    }

    #[test]
    fn name_implies_channel_and_segment_transport_channel_is_ignored() {
        let m = json!({"channel": "server"});
        assert_eq!(
            derive_channel(&m, "track", Some("chat started")),
            Channel::Chat
        );
        assert_eq!(
            derive_channel(&m, "track", Some("Custom Thing")),
            Channel::Other
        );
    }

    #[test]
    fn context_hints() {
        let m = json!({"context": {"os": {"name": "iOS"}}});
        assert_eq!(derive_channel(&m, "track", None), Channel::Mobile);
        let m = json!({"context": {"userAgent": "Mozilla/5.0"}});
        assert_eq!(derive_channel(&m, "identify", None), Channel::Web);
        assert_eq!(derive_channel(&json!({}), "screen", None), Channel::Mobile);
    }

    #[test]
    fn every_channel_round_trips() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }
}
