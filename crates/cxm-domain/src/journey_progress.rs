//! Where each customer is in a journey, and what moving through it adds to each stage's
//! tallies. [`step`] is the whole state machine: the journey worker feeds it events in log
//! order, one customer at a time, and adds the [`Step`]s it returns to the stage rollups; a
//! replay from the start of the log reproduces the same tallies.

use serde::{Deserialize, Serialize};

use crate::journey::JourneyDefinition;

/// A contact on the same stage within this window is a repeat contact (FCR's window).
pub const REPEAT_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// A switch of channel is a re-explanation unless someone on the new channel read the
/// customer's context in cxm within this long of the contact (before or after it).
pub const CONTEXT_WINDOW_MS: i64 = 30 * 60_000;
/// The event the context API logs when it is read for a channel.
pub const CONTEXT_VIEWED: &str = "Context Viewed";
/// A stage without an SLA counts a customer as dropped off after this long without progress.
pub const DEFAULT_STALL_HOURS: f64 = 30.0 * 24.0;

/// What the state machine needs of a channel: whether it is the one of the last contact, and
/// whether it is a conversation (a switch between conversations is a re-explanation). Stored
/// positions hold the channel's name; a walk over the columnar log holds an interned id, so
/// it moves millions of customers without allocating.
pub trait Channel: Clone + PartialEq {
    fn conversational(&self) -> bool;
}

impl Channel for String {
    fn conversational(&self) -> bool {
        conversational(self)
    }
}

/// An interned channel: its number in a walk's dictionary and whether it is conversational.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId {
    pub id: u16,
    pub conversational: bool,
}

impl ChannelId {
    pub fn new(id: u16, name: &str) -> ChannelId {
        ChannelId {
            id,
            conversational: conversational(name),
        }
    }
}

impl Channel for ChannelId {
    fn conversational(&self) -> bool {
        self.conversational
    }
}

/// One customer's place in one journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position<C = String> {
    /// Stage index in the definition.
    pub stage: usize,
    pub entered_ms: i64,
    /// The stage's exit event has been seen; the customer waits for the next stage.
    pub done: bool,
    pub last_contact_ms: i64,
    pub last_channel: C,
    /// Contacts on this stage's entry events again within [`REPEAT_WINDOW_MS`].
    pub repeats: u32,
    /// Those repeats that came on another conversational channel than the contact before and
    /// found no context there (re-explanations).
    pub switches: u32,
    /// A switch not yet counted: its time, waiting [`CONTEXT_WINDOW_MS`] for a context view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_switch_ms: Option<i64>,
    /// The last time the customer's context was read, and for which channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_seen: Option<(i64, C)>,
}

impl<C> Position<C> {
    /// Switches counted when the visit ends: a switch still waiting for a view counts.
    fn switches_at_close(&self) -> u32 {
        self.switches + u32::from(self.unseen_switch_ms.is_some())
    }

    /// The same position with its channels named by `f`.
    pub fn map_channel<D>(self, f: impl Fn(C) -> D) -> Position<D> {
        Position {
            stage: self.stage,
            entered_ms: self.entered_ms,
            done: self.done,
            last_contact_ms: self.last_contact_ms,
            last_channel: f(self.last_channel),
            repeats: self.repeats,
            switches: self.switches,
            unseen_switch_ms: self.unseen_switch_ms,
            context_seen: self.context_seen.map(|(t, c)| (t, f(c))),
        }
    }
}

/// The event fields a journey looks at.
#[derive(Debug, Clone, Copy)]
pub struct JourneyEvent<'a> {
    pub name: &'a str,
    pub ts_ms: i64,
    pub channel: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Moved on to a later stage.
    Advanced,
    /// The stage's exit event was seen.
    Completed,
    /// Went back to an earlier stage.
    Looped,
}

/// A stage visit that has ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub stage: usize,
    pub entered_ms: i64,
    pub left_ms: i64,
    pub outcome: Outcome,
    /// The stage moved to, for advances and loops.
    pub to: Option<usize>,
    pub repeats: u32,
    pub switches: u32,
}

impl Visit {
    pub fn hours(&self) -> f64 {
        (self.left_ms - self.entered_ms).max(0) as f64 / 3_600_000.0
    }
}

/// What one event did to one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<C = String> {
    /// The customer's position afterwards (unchanged when the event meant nothing here).
    pub position: Option<Position<C>>,
    /// Visits that ended (two when moving into a last stage, which completes on arrival).
    pub closed: Vec<Visit>,
    /// A stage entered (a new visit), and whether it was entered going backwards.
    pub entered: Option<(usize, bool)>,
    /// The event was a repeat contact on the current stage.
    pub repeat: bool,
}

impl<C> Default for Step<C> {
    fn default() -> Self {
        Step {
            position: None,
            closed: vec![],
            entered: None,
            repeat: false,
        }
    }
}

/// A journey's stage graph worked out once for a walk: the walk order ([`ranks`]), each
/// stage's successors, and which stages finish on arrival (a last stage with no exit event).
#[derive(Debug, Clone)]
pub struct Shape {
    pub rank: Vec<usize>,
    successors: Vec<Vec<usize>>,
    finishes: Vec<bool>,
}

impl Shape {
    pub fn of(def: &JourneyDefinition) -> Shape {
        let successors: Vec<Vec<usize>> =
            (0..def.stages.len()).map(|i| def.successors(i)).collect();
        let finishes = successors
            .iter()
            .zip(&def.stages)
            .map(|(next, s)| next.is_empty() && s.exit.is_empty())
            .collect();
        Shape {
            rank: ranks(def),
            successors,
            finishes,
        }
    }
}

/// The stages one event name enters and the stages it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    pub entry: Vec<usize>,
    pub exit: Vec<usize>,
}

impl Matches {
    pub fn of(def: &JourneyDefinition, name: &str) -> Matches {
        let on = |list: &[String]| list.iter().any(|e| e == name);
        Matches {
            entry: (0..def.stages.len())
                .filter(|i| on(&def.stages[*i].entry))
                .collect(),
            exit: (0..def.stages.len())
                .filter(|i| on(&def.stages[*i].exit))
                .collect(),
        }
    }

    /// The name means nothing to the journey.
    pub fn is_empty(&self) -> bool {
        self.entry.is_empty() && self.exit.is_empty()
    }
}

/// The order stages are meant to be walked in: position in a topological order of the
/// stage graph (the definition has no circles), so "going back" is well defined.
pub fn ranks(def: &JourneyDefinition) -> Vec<usize> {
    let n = def.stages.len();
    let mut indegree = vec![0usize; n];
    for i in 0..n {
        for j in def.successors(i) {
            indegree[j] += 1;
        }
    }
    // stable: among ready stages the one listed first goes first
    let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).rev().collect();
    let mut rank = vec![usize::MAX; n];
    let mut next = 0;
    while let Some(i) = ready.pop() {
        rank[i] = next;
        next += 1;
        let mut freed = vec![];
        for j in def.successors(i) {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                freed.push(j);
            }
        }
        freed.sort_unstable_by(|a, b| b.cmp(a));
        ready.extend(freed);
    }
    // a definition that passed validation has no circle; anything left ranks last, in order
    for r in rank.iter_mut() {
        if *r == usize::MAX {
            *r = next;
            next += 1;
        }
    }
    rank
}

fn conversational(channel: &str) -> bool {
    !matches!(channel, "other" | "in_product")
}

/// Advances one customer by one event.
pub fn step(
    def: &JourneyDefinition,
    shape: &Shape,
    pos: Option<&Position>,
    ev: JourneyEvent<'_>,
) -> Step {
    step_matched(
        shape,
        pos,
        &Matches::of(def, ev.name),
        ev.ts_ms,
        &ev.channel.to_string(),
    )
}

/// [`step`] with the event's name already matched to stages: the whole state machine.
pub fn step_matched<C: Channel>(
    shape: &Shape,
    pos: Option<&Position<C>>,
    m: &Matches,
    ts_ms: i64,
    channel: &C,
) -> Step<C> {
    let rank = &shape.rank;
    // a switch that waited out its window without a context view is a re-explanation now
    let settled;
    let pos = match pos {
        Some(p)
            if p.unseen_switch_ms
                .is_some_and(|t| ts_ms - t > CONTEXT_WINDOW_MS) =>
        {
            let mut q = p.clone();
            q.switches += 1;
            q.unseen_switch_ms = None;
            settled = q;
            Some(&settled)
        }
        other => other,
    };
    let seen = pos.and_then(|p| p.context_seen.clone());
    let enter = |stage: usize, back: bool| {
        // a last stage with no exit event is finished on arrival: reaching it completes the journey
        let done = shape.finishes[stage];
        Step {
            position: Some(Position {
                stage,
                entered_ms: ts_ms,
                done,
                last_contact_ms: ts_ms,
                last_channel: channel.clone(),
                repeats: 0,
                switches: 0,
                unseen_switch_ms: None,
                context_seen: seen.clone(),
            }),
            closed: if done {
                vec![Visit {
                    stage,
                    entered_ms: ts_ms,
                    left_ms: ts_ms,
                    outcome: Outcome::Completed,
                    to: None,
                    repeats: 0,
                    switches: 0,
                }]
            } else {
                vec![]
            },
            entered: Some((stage, back)),
            repeat: false,
        }
    };
    let candidates = &m.entry;
    let Some(p) = pos else {
        return match candidates.iter().min_by_key(|i| rank[**i]) {
            Some(&j) => enter(j, false),
            None => Step::default(),
        };
    };
    let successors = &shape.successors[p.stage];
    let mine = rank[p.stage];
    let forward = candidates
        .iter()
        .copied()
        .filter(|j| successors.contains(j))
        .min_by_key(|j| rank[*j])
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .filter(|j| rank[*j] > mine)
                .min_by_key(|j| rank[*j])
        });
    // an event that is both this stage's exit and a later stage's entry moves the customer on
    if !p.done && forward.is_none() && m.exit.contains(&p.stage) {
        let mut next = p.clone();
        next.done = true;
        return Step {
            closed: vec![Visit {
                stage: p.stage,
                entered_ms: p.entered_ms,
                left_ms: ts_ms,
                outcome: Outcome::Completed,
                to: None,
                repeats: p.repeats,
                switches: p.switches_at_close(),
            }],
            position: Some(next),
            entered: None,
            repeat: false,
        };
    }
    if candidates.is_empty() {
        return Step::default();
    }
    if candidates.contains(&p.stage) {
        if p.done {
            // the stage again after finishing it (a renewal, a second order): a new visit
            return enter(p.stage, false);
        }
        let mut next = p.clone();
        let repeat = ts_ms - p.last_contact_ms <= REPEAT_WINDOW_MS;
        if repeat {
            next.repeats += 1;
            if *channel != p.last_channel
                && channel.conversational()
                && p.last_channel.conversational()
            {
                // context read for this channel around the contact: nothing to explain again
                let carried = p
                    .context_seen
                    .as_ref()
                    .is_some_and(|(t, c)| c == channel && (ts_ms - t).abs() <= CONTEXT_WINDOW_MS);
                if !carried {
                    if next.unseen_switch_ms.is_some() {
                        next.switches += 1;
                    }
                    next.unseen_switch_ms = Some(ts_ms);
                }
            }
        }
        next.last_contact_ms = ts_ms;
        next.last_channel = channel.clone();
        return Step {
            position: Some(next),
            closed: vec![],
            entered: None,
            repeat,
        };
    }
    // after finishing the journey (done in a last stage), an earlier stage is a new run
    let finished = p.done && successors.is_empty();
    let (to, back) = match forward {
        Some(j) => (j, false),
        None => match candidates.iter().copied().max_by_key(|j| rank[*j]) {
            Some(j) => (j, !finished),
            None => return Step::default(),
        },
    };
    let mut s = enter(to, back);
    if !p.done {
        s.closed.insert(
            0,
            Visit {
                stage: p.stage,
                entered_ms: p.entered_ms,
                left_ms: ts_ms,
                outcome: if back {
                    Outcome::Looped
                } else {
                    Outcome::Advanced
                },
                to: Some(to),
                repeats: p.repeats,
                switches: p.switches_at_close(),
            },
        );
    }
    s
}

/// A read of the customer's context for `channel` (the [`CONTEXT_VIEWED`] event): a switch
/// to that channel waiting within [`CONTEXT_WINDOW_MS`] found its context and is no
/// re-explanation; the read is remembered for a switch that comes just after it.
pub fn context_viewed<C: Channel>(pos: &Position<C>, ts_ms: i64, channel: &C) -> Position<C> {
    let mut next = pos.clone();
    if let Some(t) = next.unseen_switch_ms {
        if ts_ms - t > CONTEXT_WINDOW_MS {
            next.switches += 1;
            next.unseen_switch_ms = None;
        } else if (ts_ms - t).abs() <= CONTEXT_WINDOW_MS && *channel == next.last_channel {
            next.unseen_switch_ms = None;
        }
    }
    next.context_seen = Some((ts_ms, channel.clone()));
    next
}

/// The event names a walk of `def` reads: its stages' and the context views.
pub fn walked_names(def: &JourneyDefinition) -> Vec<String> {
    let mut names = def.event_names();
    if !names.iter().any(|n| n == CONTEXT_VIEWED) {
        names.push(CONTEXT_VIEWED.to_string());
    }
    names
}

/// Time-in-stage histogram: bucket 0 holds visits under a minute, bucket i ≥ 1 holds
/// [1.25^(i-1), 1.25^i) minutes; the last bucket holds everything longer (over a year).
/// Percentiles read from it are within 12% of the exact value, which is plenty for hours
/// and days, and it adds in constant time.
pub const TIME_BUCKETS: usize = 62;
const GROWTH: f64 = 1.25;

fn bucket_of(hours: f64) -> usize {
    let minutes = hours * 60.0;
    if minutes < 1.0 {
        return 0;
    }
    ((minutes.ln() / GROWTH.ln()).floor() as usize + 1).min(TIME_BUCKETS - 1)
}

fn bucket_hours(i: usize) -> f64 {
    if i == 0 {
        return 0.5 / 60.0;
    }
    // geometric middle of the bucket
    GROWTH.powf(i as f64 - 0.5) / 60.0
}

/// Answers given while a customer was in a stage, by valence (for the loss-averse sentiment
/// term) and by metric (for display).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackTally {
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub csat_top2: u64,
    pub csat_n: u64,
    pub ces_sum: f64,
    pub ces_n: u64,
}

/// One answer's kind and score, as the stage tally needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageAnswer {
    Nps(f64),
    Csat(f64),
    Ces(f64),
    /// A text answer's sentiment (VADER compound, −1..1).
    Sentiment(f64),
}

impl FeedbackTally {
    pub fn add(&mut self, a: StageAnswer) {
        use std::cmp::Ordering::*;
        // +1 positive, 0 neutral, −1 negative
        let valence = match a {
            StageAnswer::Nps(s) => {
                if s >= 9.0 {
                    self.promoters += 1;
                    Greater
                } else if s >= 7.0 {
                    self.passives += 1;
                    Equal
                } else {
                    self.detractors += 1;
                    Less
                }
            }
            StageAnswer::Csat(s) => {
                self.csat_n += 1;
                if s >= 4.0 {
                    self.csat_top2 += 1;
                }
                s.partial_cmp(&3.0).unwrap_or(Equal)
            }
            StageAnswer::Ces(s) => {
                self.ces_n += 1;
                self.ces_sum += s;
                s.partial_cmp(&4.0).unwrap_or(Equal)
            }
            StageAnswer::Sentiment(c) => {
                if c >= 0.05 {
                    Greater
                } else if c <= -0.05 {
                    Less
                } else {
                    Equal
                }
            }
        };
        match valence {
            Greater => self.positive += 1,
            Equal => self.neutral += 1,
            Less => self.negative += 1,
        }
    }

    /// Adds another tally (a walk split over threads adds its parts).
    pub fn absorb(&mut self, o: &FeedbackTally) {
        self.positive += o.positive;
        self.neutral += o.neutral;
        self.negative += o.negative;
        self.promoters += o.promoters;
        self.passives += o.passives;
        self.detractors += o.detractors;
        self.csat_top2 += o.csat_top2;
        self.csat_n += o.csat_n;
        self.ces_sum += o.ces_sum;
        self.ces_n += o.ces_n;
    }

    pub fn answers(&self) -> u64 {
        self.positive + self.neutral + self.negative
    }
}

/// Everything cxm keeps per journey stage, added to as customers move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    /// Visits opened (a customer coming back opens another).
    pub entries: u64,
    /// Of those, entered going backwards from a later stage.
    pub came_back: u64,
    pub advanced: u64,
    pub completed: u64,
    pub looped: u64,
    /// Ended visits with at least one repeat contact (not first-contact resolved).
    pub repeat_visits: u64,
    pub repeat_contacts: u64,
    pub channel_switches: u64,
    /// Ended visits, by time spent (see [`TIME_BUCKETS`]).
    pub time: Vec<u64>,
    pub time_sum_hours: f64,
    /// Advanced or completed within the stage's target / beyond its SLA.
    pub within_target: u64,
    pub over_sla: u64,
    pub feedback: FeedbackTally,
}

impl Default for StageStats {
    fn default() -> Self {
        StageStats {
            entries: 0,
            came_back: 0,
            advanced: 0,
            completed: 0,
            looped: 0,
            repeat_visits: 0,
            repeat_contacts: 0,
            channel_switches: 0,
            time: vec![0; TIME_BUCKETS],
            time_sum_hours: 0.0,
            within_target: 0,
            over_sla: 0,
            feedback: FeedbackTally::default(),
        }
    }
}

impl StageStats {
    /// Adds an ended visit of this stage; `target`/`sla` are the stage's, in hours.
    pub fn close(&mut self, v: &Visit, target: Option<f64>, sla: Option<f64>) {
        match v.outcome {
            Outcome::Advanced => self.advanced += 1,
            Outcome::Completed => self.completed += 1,
            Outcome::Looped => self.looped += 1,
        }
        if v.repeats > 0 {
            self.repeat_visits += 1;
        }
        self.repeat_contacts += u64::from(v.repeats);
        self.channel_switches += u64::from(v.switches);
        // a last stage completed on arrival has no time in it to measure
        let arrival = v.outcome == Outcome::Completed && v.left_ms == v.entered_ms;
        if v.outcome != Outcome::Looped && !arrival {
            let h = v.hours();
            if self.time.len() != TIME_BUCKETS {
                self.time.resize(TIME_BUCKETS, 0);
            }
            self.time[bucket_of(h)] += 1;
            self.time_sum_hours += h;
            if target.is_some_and(|t| h <= t) {
                self.within_target += 1;
            }
            if sla.is_some_and(|s| h > s) {
                self.over_sla += 1;
            }
        }
    }

    /// Adds another stage's tallies (a walk split over threads adds its parts).
    pub fn absorb(&mut self, o: &StageStats) {
        self.entries += o.entries;
        self.came_back += o.came_back;
        self.advanced += o.advanced;
        self.completed += o.completed;
        self.looped += o.looped;
        self.repeat_visits += o.repeat_visits;
        self.repeat_contacts += o.repeat_contacts;
        self.channel_switches += o.channel_switches;
        if self.time.len() < o.time.len() {
            self.time.resize(o.time.len(), 0);
        }
        for (a, b) in self.time.iter_mut().zip(&o.time) {
            *a += b;
        }
        self.time_sum_hours += o.time_sum_hours;
        self.within_target += o.within_target;
        self.over_sla += o.over_sla;
        self.feedback.absorb(&o.feedback);
    }

    pub fn converted(&self) -> u64 {
        self.advanced + self.completed
    }

    pub fn ended(&self) -> u64 {
        self.converted() + self.looped
    }

    /// Visits still open: entered, not yet ended.
    pub fn open(&self) -> u64 {
        self.entries.saturating_sub(self.ended())
    }

    /// Time-in-stage percentile (0..=1) in hours, from the histogram.
    pub fn time_percentile(&self, q: f64) -> Option<f64> {
        let n: u64 = self.time.iter().sum();
        if n == 0 {
            return None;
        }
        let want = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in self.time.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(bucket_hours(i));
            }
        }
        None
    }

    pub fn time_mean(&self) -> Option<f64> {
        let n: u64 = self.time.iter().sum();
        (n > 0).then(|| self.time_sum_hours / n as f64)
    }

    /// Visits that ended with a time (advances and completions).
    pub fn timed(&self) -> u64 {
        self.time.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support() -> JourneyDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "Support", "owner": "ops",
            "stages": [
                {"id": "ask", "name": "Ask", "owner": "support", "entry": ["Chat Started", "Call Started", "Ticket Opened"], "target_hours": 1, "sla_hours": 4},
                {"id": "fix", "name": "Fix", "owner": "support", "entry": ["Ticket Escalated"], "exit": ["Ticket Resolved"]},
                {"id": "done", "name": "Resolved", "owner": "support", "entry": ["Ticket Resolved"]}
            ]
        }))
        .unwrap()
    }

    const H: i64 = 3_600_000;

    fn walk(
        def: &JourneyDefinition,
        events: &[(&str, i64, &str)],
    ) -> (Vec<Step>, Option<Position>) {
        let shape = Shape::of(def);
        let mut pos = None;
        let mut steps = vec![];
        for (name, ts, channel) in events {
            let s = step(
                def,
                &shape,
                pos.as_ref(),
                JourneyEvent {
                    name,
                    ts_ms: *ts,
                    channel,
                },
            );
            if s.position.is_some() {
                pos.clone_from(&s.position);
            }
            steps.push(s);
        }
        (steps, pos)
    }

    #[test]
    fn a_customer_moves_through_repeats_and_loops() {
        let def = support();
        let (steps, pos) = walk(
            &def,
            &[
                ("Chat Started", 0, "chat"),
                ("Call Started", 2 * H, "voice"),
                ("Ticket Escalated", 3 * H, "support"),
                ("Chat Started", 30 * H, "chat"),
                ("Ticket Escalated", 31 * H, "support"),
                ("Ticket Resolved", 40 * H, "support"),
            ],
        );
        assert_eq!(steps[0].entered, Some((0, false)));
        assert!(
            steps[1].repeat,
            "the call two hours after the chat is a repeat contact"
        );
        let first = &steps[2].closed[0];
        assert_eq!(
            (first.outcome, first.repeats, first.switches),
            (Outcome::Advanced, 1, 1)
        );
        assert_eq!(first.hours(), 3.0);
        let back = &steps[3].closed[0];
        assert_eq!(
            (back.stage, back.outcome, back.to),
            (1, Outcome::Looped, Some(0))
        );
        assert_eq!(steps[3].entered, Some((0, true)));
        // "Ticket Resolved" is both the fix stage's exit and the last stage's entry: it enters
        let last = &steps[5].closed[0];
        assert_eq!((last.stage, last.outcome), (1, Outcome::Advanced));
        let arrived = &steps[5].closed[1];
        assert_eq!(
            (arrived.stage, arrived.outcome),
            (2, Outcome::Completed),
            "the last stage completes on arrival"
        );
        let pos = pos.unwrap();
        assert_eq!((pos.stage, pos.done), (2, true));
        // a new contact after the journey finished starts a new run: not a loop back
        let again = step(
            &def,
            &Shape::of(&def),
            Some(&pos),
            JourneyEvent {
                name: "Chat Started",
                ts_ms: 50 * H,
                channel: "chat",
            },
        );
        assert_eq!(again.entered, Some((0, false)));
        assert!(again.closed.is_empty());
    }

    /// Walks events where `("view", ts, channel)` is a context view.
    fn walk_with_views(def: &JourneyDefinition, events: &[(&str, i64, &str)]) -> Vec<Visit> {
        let shape = Shape::of(def);
        let mut pos: Option<Position> = None;
        let mut closed = vec![];
        for (name, ts, channel) in events {
            if *name == "view" {
                pos = pos.map(|p| context_viewed(&p, *ts, &channel.to_string()));
                continue;
            }
            let s = step(
                def,
                &shape,
                pos.as_ref(),
                JourneyEvent {
                    name,
                    ts_ms: *ts,
                    channel,
                },
            );
            closed.extend(s.closed);
            if s.position.is_some() {
                pos = s.position;
            }
        }
        closed
    }

    #[test]
    fn a_switch_is_a_re_explanation_only_when_no_one_read_the_context() {
        let def = support();
        let m = 60_000;
        let switches = |events: &[(&str, i64, &str)]| {
            let mut all = events.to_vec();
            all.push(("Ticket Escalated", 10 * H, "support"));
            walk_with_views(&def, &all)[0].switches
        };
        let (chat, call) = (
            ("Chat Started", 0, "chat"),
            ("Call Started", 2 * H, "voice"),
        );
        assert_eq!(switches(&[chat, call]), 1, "nobody read the context");
        assert_eq!(
            switches(&[chat, call, ("view", 2 * H + 5 * m, "voice")]),
            0,
            "read on the call"
        );
        assert_eq!(
            switches(&[chat, ("view", 2 * H - 10 * m, "voice"), call]),
            0,
            "read just before"
        );
        assert_eq!(
            switches(&[chat, call, ("view", 2 * H + 5 * m, "chat")]),
            1,
            "read on another channel"
        );
        assert_eq!(
            switches(&[chat, call, ("view", 2 * H + 45 * m, "voice")]),
            1,
            "read too late"
        );
        assert_eq!(
            switches(&[chat, call, ("Chat Started", 3 * H, "chat")]),
            2,
            "back and forth, twice unexplained"
        );
        // a switch still waiting when the visit ends counts
        assert_eq!(switches(&[chat, ("Call Started", 10 * H - m, "voice")]), 1);
    }

    #[test]
    fn an_exit_event_completes_and_the_next_entry_opens_without_closing_twice() {
        let mut def = support();
        def.stages[2].entry = vec!["Survey Responded".into()];
        let (steps, _) = walk(
            &def,
            &[
                ("Ticket Escalated", 0, "support"),
                ("Ticket Resolved", 5 * H, "support"),
                ("Survey Responded", 6 * H, "email"),
            ],
        );
        assert_eq!(
            steps[0].entered,
            Some((1, false)),
            "customers may start mid-journey"
        );
        assert_eq!(steps[1].closed[0].outcome, Outcome::Completed);
        assert_eq!(
            steps[2].closed.len(),
            1,
            "only the last stage's own completion on arrival"
        );
        assert_eq!(steps[2].closed[0].stage, 2);
        assert_eq!(steps[2].entered, Some((2, false)));
    }

    #[test]
    fn stats_add_up_and_percentiles_are_close() {
        let def = support();
        let mut st = StageStats::default();
        for h in 1..=100 {
            let v = Visit {
                stage: 0,
                entered_ms: 0,
                left_ms: h * H,
                outcome: Outcome::Advanced,
                to: Some(1),
                repeats: u32::from(h % 10 == 0),
                switches: 0,
            };
            st.close(&v, def.stages[0].target_hours, def.stages[0].sla_hours);
        }
        assert_eq!(
            (st.advanced, st.within_target, st.over_sla, st.repeat_visits),
            (100, 1, 96, 10)
        );
        let p50 = st.time_percentile(0.5).unwrap();
        assert!((p50 / 50.0 - 1.0).abs() < 0.13, "{p50}");
        assert_eq!(st.time_mean(), Some(50.5));
        let mut t = FeedbackTally::default();
        for a in [
            StageAnswer::Nps(10.0),
            StageAnswer::Nps(3.0),
            StageAnswer::Csat(3.0),
            StageAnswer::Ces(6.0),
            StageAnswer::Sentiment(-0.6),
        ] {
            t.add(a);
        }
        assert_eq!((t.positive, t.neutral, t.negative), (2, 1, 2));
    }

    proptest::proptest! {
        /// Whatever the events, a customer's visits never end more often than they open.
        #[test]
        fn visits_balance(events in proptest::collection::vec((0usize..6, 0i64..100, 0usize..3), 0..60)) {
            let def = support();
            let names = ["Chat Started", "Call Started", "Ticket Opened", "Ticket Escalated", "Ticket Resolved", "Page Viewed"];
            let channels = ["chat", "voice", "other"];
            let mut evs: Vec<(&str, i64, &str)> = events.iter().map(|(n, t, c)| (names[*n], *t * H, channels[*c])).collect();
            evs.sort_by_key(|e| e.1);
            let (steps, pos) = walk(&def, &evs);
            let opened = steps.iter().filter(|s| s.entered.is_some()).count();
            let closed: usize = steps.iter().map(|s| s.closed.len()).sum();
            let open_now = usize::from(pos.as_ref().is_some_and(|p| !p.done));
            proptest::prop_assert_eq!(opened, closed + open_now);
            for s in &steps {
                for v in &s.closed {
                    proptest::prop_assert!(v.left_ms >= v.entered_ms);
                }
            }
        }
    }
}
