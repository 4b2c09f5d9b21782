//! The cold walk: every journey of a tenant measured from the whole log in one pass over the
//! columnar blocks (see `cxm_store::columns`), the events after them, and the answers.
//!
//! The worker's row-by-row walk (`journeys::advance`) keeps each journey current as events
//! arrive; this is what measures a journey that has never been walked (a new journey or a
//! new version) in about a second per ten million events instead of a minute, and what the
//! worker saves as that journey's first pass. Both feed the same state machine
//! (`journey_progress::step_matched`) in the same per-customer order, so they agree to the
//! count (a test holds them to it).
//!
//! The shape of the pass: decode blocks on every core, resolving each block's identities to
//! profiles through one map of the identity graph; keep the events some journey names; group
//! them by customer with a counting sort (log order within a customer is kept); walk each
//! customer through each journey, attributing their answers to the stage they were in.

use rustc_hash::FxHashMap as HashMap;

use cxm_domain::journey::{JourneyDefinition, JourneyUnit};
use cxm_domain::journey_progress::{
    self as progress, ChannelId, Matches, Position, Shape, StageAnswer, StageStats, Visit,
};
use cxm_store::columns::{self, NONE};
use cxm_store::{JourneyAnswer, Store};

use crate::error::AppResult;

/// Blocks read at once: about 25 MB of bodies, enough to keep every core decoding.
const BLOCKS_PER_READ: u32 = 16;

/// One journey measured by a scan.
#[derive(Debug, Clone)]
pub struct Walked {
    /// Customers or accounts: what the ids of `positions` and `visits` name.
    pub unit: JourneyUnit,
    pub stats: Vec<StageStats>,
    /// Where each customer who entered the journey stands at the end of the log.
    pub positions: Vec<(u32, Position<ChannelId>)>,
    /// Every ended visit, when the scan was asked to keep them (to save them).
    pub visits: Vec<(u32, Visit)>,
}

/// A scan's result: per journey (in the order asked), and the names its ids stand for.
#[derive(Debug)]
pub struct Scan {
    pub journeys: Vec<Walked>,
    customers: Units,
    accounts: Option<Units>,
    pub channels: Vec<String>,
    /// The last event seq and answer id the scan read.
    pub through_seq: i64,
    pub answers_through: i64,
    pub events_read: usize,
    pub blocks: usize,
}

impl Scan {
    /// The customer's profile id or the account's id behind a walked id.
    pub fn unit_name(&self, w: &Walked, id: u32) -> &str {
        let u = match (&w.unit, &self.accounts) {
            (JourneyUnit::Account, Some(a)) => a,
            _ => &self.customers,
        };
        &u.names[id as usize]
    }

    /// A position with its channel named again, as the store keeps it.
    pub fn named(&self, p: &Position<ChannelId>) -> Position {
        p.clone()
            .map_channel(|c| self.channels[usize::from(c.id)].clone())
    }
}

/// The events the journeys name, in log order, by columns.
#[derive(Default)]
struct Events {
    profile: Vec<u32>,
    name: Vec<u32>,
    channel: Vec<u16>,
    ts: Vec<i64>,
    channels: Vec<String>,
}

impl Events {
    fn channel_id(&mut self, seen: &mut HashMap<String, u16>, name: &str) -> u16 {
        if let Some(id) = seen.get(name) {
            return *id;
        }
        // more channels than ids is not a real log; they share the last one
        let id = u16::try_from(self.channels.len()).unwrap_or(u16::MAX);
        if id < u16::MAX {
            self.channels.push(name.to_string());
        }
        seen.insert(name.to_string(), id);
        id
    }

    /// Appends another part, renaming its channels into this part's dictionary.
    fn append(&mut self, other: Events) {
        let mut seen: HashMap<String, u16> = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        let map: Vec<u16> = other
            .channels
            .iter()
            .map(|c| self.channel_id(&mut seen, c))
            .collect();
        self.profile.extend(other.profile);
        self.name.extend(other.name);
        self.channel.extend(
            other
                .channel
                .iter()
                .map(|c| map.get(usize::from(*c)).copied().unwrap_or(u16::MAX)),
        );
        self.ts.extend(other.ts);
    }
}

/// Decodes blocks, keeping the events whose name is in `wanted` and whose customer is known.
fn decode_blocks(
    blocks: &[columns::EventBlock],
    wanted: &HashMap<&str, u32>,
    who: &HashMap<String, u32>,
) -> AppResult<Events> {
    let mut out = Events::default();
    let mut seen_channels: HashMap<String, u16> = HashMap::default();
    for b in blocks {
        let c = columns::decode(&b.body)?;
        let names: Vec<u32> = c
            .names
            .iter()
            .map(|n| wanted.get(n).copied().unwrap_or(NONE))
            .collect();
        let ids: Vec<u32> = c
            .ids
            .iter()
            .map(|k| who.get(*k).copied().unwrap_or(NONE))
            .collect();
        let chans: Vec<u16> = c
            .channels
            .iter()
            .map(|ch| out.channel_id(&mut seen_channels, ch))
            .collect();
        let id = |x: u32| if x == NONE { NONE } else { ids[x as usize] };
        for i in 0..c.len() {
            let name = names[c.name[i] as usize];
            if name == NONE {
                continue;
            }
            // the user id decides when it is known to the graph, as in the row walk
            let mut p = id(c.user[i]);
            if p == NONE {
                p = id(c.anon[i]);
            }
            if p == NONE {
                continue;
            }
            out.profile.push(p);
            out.name.push(name);
            out.channel.push(chans[c.channel[i] as usize]);
            out.ts.push(c.ts[i]);
        }
    }
    Ok(out)
}

/// What a journey walks (customers or accounts): their ids, the events grouped by them in
/// log order, and the answers grouped by them in time order; the last answer group holds
/// the answers from none of them.
#[derive(Debug)]
struct Units {
    names: Vec<String>,
    events: (Vec<u32>, Vec<u32>),
    answers: (Vec<u32>, Vec<u32>),
}

impl Units {
    /// `events` and `owners` hold each event's and answer's unit ([`NONE`]: none).
    fn of(names: Vec<String>, events: &[u32], owners: &[u32], answers: &[JourneyAnswer]) -> Units {
        let n = names.len();
        let keep: Vec<u32> = events.iter().map(|k| (*k).min(n as u32)).collect();
        let mut by_event = group(&keep, n + 1);
        // events of no unit are not walked
        by_event.0.truncate(n + 1);
        let owners: Vec<u32> = owners.iter().map(|k| (*k).min(n as u32)).collect();
        let mut by_answer = group(&owners, n + 1);
        for p in 0..n {
            let (a, b) = (by_answer.0[p] as usize, by_answer.0[p + 1] as usize);
            by_answer.1[a..b].sort_by_key(|k| answers[*k as usize].collected_at_ms);
        }
        Units {
            names,
            events: by_event,
            answers: by_answer,
        }
    }
}

/// Indices of `keys` grouped by key (a counting sort: stable, so log order stays within a key).
/// Returns the offsets of each key's run and the order.
fn group(keys: &[u32], n_keys: usize) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n_keys + 1];
    for k in keys {
        start[*k as usize + 1] += 1;
    }
    for i in 0..n_keys {
        start[i + 1] += start[i];
    }
    let mut at = start.clone();
    let mut order = vec![0u32; keys.len()];
    for (i, k) in keys.iter().enumerate() {
        let slot = &mut at[*k as usize];
        order[*slot as usize] = i as u32;
        *slot += 1;
    }
    (start, order)
}

/// What an answer adds to a stage (its score, or a text's sentiment); None for the rest.
pub fn stage_answer(a: &JourneyAnswer) -> Option<StageAnswer> {
    Some(match (a.field_type.as_str(), a.score, a.sentiment) {
        ("nps", Some(s), _) => StageAnswer::Nps(s),
        ("csat", Some(s), _) => StageAnswer::Csat(s),
        ("ces", Some(s), _) => StageAnswer::Ces(s),
        ("text", _, Some(c)) => StageAnswer::Sentiment(c),
        _ => return None,
    })
}

/// Walks the customers in `range` through one journey.
#[allow(clippy::too_many_arguments)]
fn walk_range(
    def: &JourneyDefinition,
    journey_id: &str,
    shape: &Shape,
    matches: &[Matches],
    ev: &Events,
    chan: &[ChannelId],
    (start, order): (&[u32], &[u32]),
    (a_start, a_order): (&[u32], &[u32]),
    answers: &[JourneyAnswer],
    range: std::ops::Range<usize>,
    keep_visits: bool,
    context_name: u32,
    window: Option<Window>,
) -> Walked {
    let counts = |t: i64| window.is_none_or(|w| w.holds(t));
    let mut stats = vec![StageStats::default(); def.stages.len()];
    let mut positions = vec![];
    let mut visits = vec![];
    let mut mine: Vec<Visit> = vec![];
    let index = def.index();
    for p in range {
        let mut pos: Option<Position<ChannelId>> = None;
        mine.clear();
        for &i in &order[start[p] as usize..start[p + 1] as usize] {
            let i = i as usize;
            let c = chan[usize::from(ev.channel[i]).min(chan.len() - 1)];
            if ev.name[i] == context_name {
                if let Some(q) = &pos {
                    pos = Some(progress::context_viewed(q, ev.ts[i], &c));
                }
                continue;
            }
            let m = &matches[ev.name[i] as usize];
            if m.is_empty() {
                continue;
            }
            let s = progress::step_matched(shape, pos.as_ref(), m, ev.ts[i], &c);
            for v in s.closed {
                // a window counts the visits that began in it, wherever they ended
                if counts(v.entered_ms) {
                    let st = &def.stages[v.stage];
                    stats[v.stage].close(&v, st.target_hours, st.sla_hours);
                }
                mine.push(v);
            }
            if let Some((stage, back)) = s.entered.filter(|_| counts(ev.ts[i])) {
                stats[stage].entries += 1;
                if back {
                    stats[stage].came_back += 1;
                }
            }
            if s.position.is_some() {
                pos = s.position;
            }
        }
        // the customer's answers, to the stage they named or the one they were in
        for &k in &a_order[a_start[p] as usize..a_start[p + 1] as usize] {
            let a = &answers[k as usize];
            let Some(answer) = stage_answer(a).filter(|_| counts(a.collected_at_ms)) else {
                continue;
            };
            let t = a.collected_at_ms;
            let named = (a.journey == journey_id)
                .then(|| index.get(a.stage.as_str()).copied())
                .flatten();
            let stage = named.or_else(|| match &pos {
                Some(q) if q.entered_ms <= t => Some(q.stage),
                _ => mine
                    .iter()
                    .filter(|v| v.entered_ms <= t && v.left_ms >= t)
                    .max_by_key(|v| v.entered_ms)
                    .map(|v| v.stage),
            });
            if let Some(s) = stage.filter(|s| *s < stats.len()) {
                stats[s].feedback.add(answer);
            }
        }
        if let Some(q) = pos {
            positions.push((p as u32, q));
        }
        if keep_visits {
            visits.extend(mine.drain(..).map(|v| (p as u32, v)));
        }
    }
    Walked {
        unit: def.unit,
        stats,
        positions,
        visits,
    }
}

/// A span of time, `[from_ms, to_ms)`: what a windowed scan counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Window {
    pub fn holds(&self, t: i64) -> bool {
        self.from_ms <= t && t < self.to_ms
    }
}

/// Measures `journeys` (id and definition) of a tenant from the whole log in one pass.
pub fn scan(
    store: &dyn Store,
    tenant: &str,
    journeys: &[(String, JourneyDefinition)],
    keep_visits: bool,
) -> AppResult<Scan> {
    scan_in(store, tenant, journeys, keep_visits, None)
}

/// Measures `journeys` over one window: entries, visits that began in it (however they
/// ended) and answers collected in it. Every customer is still walked from their first
/// event, so a stage entered in the window is known from the stages before it; where each
/// customer stands is as of now, whatever the window.
pub fn scan_window(
    store: &dyn Store,
    tenant: &str,
    journeys: &[(String, JourneyDefinition)],
    window: Window,
) -> AppResult<Scan> {
    scan_in(store, tenant, journeys, false, Some(window))
}

fn scan_in(
    store: &dyn Store,
    tenant: &str,
    journeys: &[(String, JourneyDefinition)],
    keep_visits: bool,
    window: Option<Window>,
) -> AppResult<Scan> {
    let started = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
    let head = store.max_event_seq()?;
    // every name any of the journeys reads, numbered
    let mut names: Vec<String> = journeys
        .iter()
        .flat_map(|(_, d)| progress::walked_names(d))
        .collect();
    names.sort();
    names.dedup();
    let wanted: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    // the identity graph as it is now: merges and unmerges since a block was written count
    let mut profiles: Vec<String> = vec![];
    let mut profile_ids: HashMap<String, u32> = HashMap::default();
    let mut intern = |p: String, profiles: &mut Vec<String>| -> u32 {
        let next = profiles.len() as u32;
        *profile_ids.entry(p).or_insert_with_key(|k| {
            profiles.push(k.clone());
            next
        })
    };
    let who: HashMap<String, u32> = store
        .identity_keys(tenant)?
        .into_iter()
        .map(|(k, p)| (k, intern(p, &mut profiles)))
        .collect();

    let graph_ms = ms(started);
    // blocks a page at a time (memory stays at one page of bodies), each page decoded on
    // every core, in log order; a block written after `head` was read is left to the rows
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (mut read_ms, mut covered, mut blocks) = (0.0, 0, 0);
    let mut ev = Events::default();
    loop {
        let t = std::time::Instant::now();
        let mut page = store.event_blocks(tenant, covered, BLOCKS_PER_READ)?;
        read_ms += ms(t);
        let full = page.len() == BLOCKS_PER_READ as usize;
        page.retain(|b| b.last_seq <= head);
        let Some(last) = page.last() else { break };
        covered = last.last_seq;
        blocks += page.len();
        let chunk = page.len().div_ceil(parts).max(1);
        let decoded: Vec<AppResult<Events>> = std::thread::scope(|s| {
            let handles: Vec<_> = page
                .chunks(chunk)
                .map(|part| s.spawn(|| decode_blocks(part, &wanted, &who)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(crate::error::AppError::new(
                            crate::error::ErrorCode::Internal,
                            "journey scan thread failed",
                        ))
                    })
                })
                .collect()
        });
        for part in decoded {
            ev.append(part?);
        }
        if !full {
            break;
        }
    }
    let decode_ms = ms(started) - read_ms - graph_ms;
    // the log after the last block, row by row (the compactor keeps it short)
    let tail = store.journey_events(tenant, covered, head, &names, u32::MAX)?;
    let mut seen_channels: HashMap<String, u16> = ev
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i as u16))
        .collect();
    for e in tail {
        let (Some(p), Some(n)) = (e.profile_id, wanted.get(e.name.as_str())) else {
            continue;
        };
        let c = ev.channel_id(&mut seen_channels, &e.channel);
        ev.profile.push(intern(p, &mut profiles));
        ev.name.push(*n);
        ev.channel.push(c);
        ev.ts.push(e.ts_ms);
    }
    let tail_ms = ms(started) - read_ms - graph_ms - decode_ms;
    let answers = store.journey_answers(tenant, 0, u32::MAX)?;
    let answers_through = answers.last().map_or(0, |a| a.id);
    let answer_owner: Vec<u32> = answers
        .iter()
        .map(|a| {
            a.profile_id
                .as_ref()
                .and_then(|p| profile_ids.get(p).copied())
                .unwrap_or(NONE)
        })
        .collect();
    let customers = Units::of(profiles, &ev.profile, &answer_owner, &answers);
    // an account journey walks each account's people's events together
    let accounts = if journeys.iter().any(|(_, d)| d.unit == JourneyUnit::Account) {
        let of = store.accounts_of(tenant, None)?;
        let mut names: Vec<String> = vec![];
        let mut ids: HashMap<&str, u32> = HashMap::default();
        let account: Vec<u32> = customers
            .names
            .iter()
            .map(|p| match of.get(p) {
                Some(g) => *ids.entry(g.as_str()).or_insert_with(|| {
                    names.push(g.clone());
                    names.len() as u32 - 1
                }),
                None => NONE,
            })
            .collect();
        let to = |p: &u32| account.get(*p as usize).copied().unwrap_or(NONE);
        let events: Vec<u32> = ev.profile.iter().map(to).collect();
        let owners: Vec<u32> = answer_owner.iter().map(to).collect();
        Some(Units::of(names, &events, &owners, &answers))
    } else {
        None
    };
    let mut chan: Vec<ChannelId> = ev
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| ChannelId::new(i as u16, c))
        .collect();
    if chan.is_empty() {
        chan.push(ChannelId::new(0, "other"));
    }

    let group_ms = ms(started) - read_ms - graph_ms - decode_ms - tail_ms;
    let context_name = wanted
        .get(progress::CONTEXT_VIEWED)
        .copied()
        .unwrap_or(NONE);
    let mut out = vec![];
    for (journey_id, def) in journeys {
        let shape = Shape::of(def);
        let matches: Vec<Matches> = names.iter().map(|n| Matches::of(def, n)).collect();
        let u = match (&def.unit, &accounts) {
            (JourneyUnit::Account, Some(a)) => a,
            _ => &customers,
        };
        let n = u.names.len();
        let (by_customer, by_answerer) = (&u.events, &u.answers);
        let cut = n.div_ceil(parts).max(1);
        let walked: Vec<Walked> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(cut)
                .map(|from| {
                    let range = from..(from + cut).min(n);
                    let (shape, matches, ev, chan) = (&shape, &matches, &ev, &chan);
                    let (bc, ba, answers) = (by_customer, by_answerer, &answers);
                    s.spawn(move || {
                        walk_range(
                            def,
                            journey_id,
                            shape,
                            matches,
                            ev,
                            chan,
                            (&bc.0, &bc.1),
                            (&ba.0, &ba.1),
                            answers,
                            range,
                            keep_visits,
                            context_name,
                            window,
                        )
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut all = Walked {
            unit: def.unit,
            stats: vec![StageStats::default(); def.stages.len()],
            positions: vec![],
            visits: vec![],
        };
        for w in walked {
            for (a, b) in all.stats.iter_mut().zip(&w.stats) {
                a.absorb(b);
            }
            all.positions.extend(w.positions);
            all.visits.extend(w.visits);
        }
        // answers from no customer still count when they name a stage of this journey
        let index = def.index();
        for &k in &by_answerer.1[by_answerer.0[n] as usize..] {
            let a = &answers[k as usize];
            if a.journey != *journey_id {
                continue;
            }
            if window.is_some_and(|w| !w.holds(a.collected_at_ms)) {
                continue;
            }
            if let (Some(s), Some(ans)) = (index.get(a.stage.as_str()), stage_answer(a)) {
                all.stats[*s].feedback.add(ans);
            }
        }
        out.push(all);
    }
    tracing::debug!(
        tenant,
        blocks,
        events = ev.ts.len(),
        read_ms,
        graph_ms,
        decode_ms,
        tail_ms,
        group_ms,
        walk_ms = ms(started) - read_ms - graph_ms - decode_ms - tail_ms - group_ms,
        "journey scan"
    );
    Ok(Scan {
        journeys: out,
        customers,
        accounts,
        channels: ev.channels,
        through_seq: head,
        answers_through,
        events_read: ev.ts.len(),
        blocks,
    })
}

/// Customers sitting in each stage longer than `cut` allows (a stage's SLA, or the stall
/// window), as `Store::journey_stalled` counts them from stored positions.
pub fn stalled(w: &Walked, cut: &[(usize, i64)]) -> Vec<u64> {
    stalled_in(w, cut, None)
}

/// [`stalled`], of the customers who entered their stage within `window` only (a window's
/// cohort: its `open` visits are theirs).
pub fn stalled_in(w: &Walked, cut: &[(usize, i64)], window: Option<Window>) -> Vec<u64> {
    let mut out = vec![0u64; cut.len()];
    for (_, p) in &w.positions {
        if p.done || window.is_some_and(|w| !w.holds(p.entered_ms)) {
            continue;
        }
        if let Some((i, (_, c))) = cut.iter().enumerate().find(|(_, (s, _))| *s == p.stage) {
            if p.entered_ms < *c {
                out[i] += 1;
            }
        }
    }
    out
}
