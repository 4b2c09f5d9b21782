//! The one-line summary an agent reads on escalation, and channel-switch detection, both
//! computed from a customer's most recent events.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Serialize;

use crate::taxonomy::{Channel, EventCategory};

/// The parts of an event the summary looks at.
#[derive(Debug, Clone)]
pub struct RecentEvent {
    pub name: Option<String>,
    pub event_type: String,
    pub category: EventCategory,
    pub channel: Channel,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelSwitch {
    pub from: Channel,
    pub to: Channel,
    pub previous_at: DateTime<Utc>,
    pub current_at: DateTime<Utc>,
}

/// How long after the last contact a new channel still counts as "the same issue".
pub const SWITCH_WINDOW_HOURS: i64 = 48;

/// The latest event's channel differs from the one before it, within the window. Passive
/// channels (other, in-product usage) are skipped: they are not someone telling their story.
pub fn channel_switch(events_newest_first: &[RecentEvent]) -> Option<ChannelSwitch> {
    let conversational =
        |e: &&RecentEvent| !matches!(e.channel, Channel::Other | Channel::InProduct);
    let mut it = events_newest_first.iter().filter(conversational);
    let current = it.next()?;
    let previous = it.find(|e| e.channel != current.channel)?;
    (current.timestamp - previous.timestamp <= Duration::hours(SWITCH_WINDOW_HOURS)).then_some(
        ChannelSwitch {
            from: previous.channel,
            to: current.channel,
            previous_at: previous.timestamp,
            current_at: current.timestamp,
        },
    )
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = now - t;
    if d < Duration::minutes(1) {
        "just now".into()
    } else if d < Duration::hours(1) {
        format!("{}m ago", d.num_minutes())
    } else if d < Duration::hours(48) {
        format!("{}h ago", d.num_hours())
    } else {
        format!("{}d ago", d.num_days())
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

fn verb(channel: Channel) -> &'static str {
    match channel {
        Channel::Chat => "chatted",
        Channel::Voice => "called",
        Channel::Email => "emailed",
        Channel::Social => "posted on social",
        Channel::Support => "contacted support",
        Channel::Web => "was on the web",
        Channel::Mobile => "used the app",
        Channel::Survey => "answered a survey",
        Channel::InProduct | Channel::Other => "was active",
    }
}

fn now_verb(channel: Channel) -> &'static str {
    match channel {
        Channel::Chat => "now chatting",
        Channel::Voice => "now calling",
        Channel::Email => "now emailing",
        Channel::Social => "now on social",
        Channel::Support => "now with support",
        _ => "now active",
    }
}

/// E.g. "Billing: payment failed twice since Mon; chatted 2h ago; now calling".
pub fn summary(events_newest_first: &[RecentEvent], now: DateTime<Utc>) -> String {
    let Some(latest) = events_newest_first.first() else {
        return "No activity yet".into();
    };
    let week = now - Duration::days(7);
    let recent: Vec<&RecentEvent> = events_newest_first
        .iter()
        .filter(|e| e.timestamp >= week)
        .collect();
    let mut parts = vec![];
    // the most pressing topic: the first non-routine category by urgency
    let urgent = [
        EventCategory::Churn,
        EventCategory::Billing,
        EventCategory::Support,
        EventCategory::Feedback,
    ];
    if let Some(cat) = urgent
        .iter()
        .find(|c| recent.iter().any(|e| e.category == **c))
    {
        let of_cat: Vec<&&RecentEvent> = recent.iter().filter(|e| e.category == *cat).collect();
        let top = of_cat[0];
        let name = top.name.clone().unwrap_or_else(|| top.event_type.clone());
        let same = of_cat.iter().filter(|e| e.name == top.name).count();
        let first = of_cat
            .iter()
            .filter(|e| e.name == top.name)
            .map(|e| e.timestamp)
            .min()
            .unwrap_or(top.timestamp);
        let since = if same > 1 {
            format!(" since {}", first.weekday())
        } else {
            format!(" {}", ago(now, top.timestamp))
        };
        parts.push(format!(
            "{}: {} {}{}",
            cat.label(),
            name.to_lowercase(),
            times(same),
            since
        ));
    }
    match channel_switch(events_newest_first) {
        Some(sw) => {
            parts.push(format!("{} {}", verb(sw.from), ago(now, sw.previous_at)));
            // "now" only while the contact is live; an old switch says when it happened
            if now - latest.timestamp <= Duration::hours(1) {
                parts.push(now_verb(sw.to).into());
            } else {
                parts.push(format!(
                    "then {} {}",
                    verb(sw.to),
                    ago(now, latest.timestamp)
                ));
            }
        }
        None => parts.push(format!(
            "last seen {} via {}",
            ago(now, latest.timestamp),
            latest.channel.as_str()
        )),
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, cat: EventCategory, ch: Channel, t: &str) -> RecentEvent {
        RecentEvent {
            name: Some(name.into()),
            event_type: "track".into(),
            category: cat,
            channel: ch,
            timestamp: t.parse().unwrap(),
        }
    }

    #[test]
    fn an_old_switch_is_not_now() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let evs = vec![
            ev(
                "Ticket Opened",
                EventCategory::Support,
                Channel::Support,
                "2026-10-30T10:00:00Z",
            ),
            ev(
                "Chat Started",
                EventCategory::Conversation,
                Channel::Chat,
                "2026-10-30T09:00:00Z",
            ),
        ];
        let s = summary(&evs, now);
        assert!(!s.contains("now with support"), "{s}");
        assert!(s.contains("then contacted support 26d ago"), "{s}");
    }

    #[test]
    fn billing_then_chat_then_call() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap(); // a wednesday
        let evs = vec![
            ev(
                "Call Started",
                EventCategory::Conversation,
                Channel::Voice,
                "2026-11-25T11:59:00Z",
            ),
            ev(
                "Chat Started",
                EventCategory::Conversation,
                Channel::Chat,
                "2026-11-25T10:00:00Z",
            ),
            ev(
                "Payment Failed",
                EventCategory::Billing,
                Channel::Other,
                "2026-11-24T09:00:00Z",
            ),
            ev(
                "Payment Failed",
                EventCategory::Billing,
                Channel::Other,
                "2026-11-23T09:00:00Z",
            ),
        ];
        assert_eq!(
            summary(&evs, now),
            "Billing: payment failed twice since Mon; chatted 2h ago; now calling"
        );
        let sw = channel_switch(&evs).unwrap();
        assert_eq!((sw.from, sw.to), (Channel::Chat, Channel::Voice));
    }

    #[test]
    fn no_switch_outside_window() {
        let evs = vec![
            ev(
                "Call Started",
                EventCategory::Conversation,
                Channel::Voice,
                "2026-11-25T11:59:00Z",
            ),
            ev(
                "Chat Started",
                EventCategory::Conversation,
                Channel::Chat,
                "2026-11-20T10:00:00Z",
            ),
        ];
        assert!(channel_switch(&evs).is_none());
        assert_eq!(summary(&[], Utc::now()), "No activity yet");
    }
}
