//! The store's capability traits. `Store` is all of them; callers hold `&dyn Store` and
//! call any method, a backend implements each trait in its own file.

use cxm_domain::Identifier;

use crate::*;

/// Everything cxm keeps, one capability trait per room (each implemented for both backends
/// in `sqlite/<capability>.rs` and `pg/<capability>.rs`). Every method that reads or writes
/// tenant data takes the tenant.
pub trait Store:
    TenantStore
    + EventStore
    + IdentityStore
    + FeedbackStore
    + ThemeStore
    + SurveyStore
    + JourneyStore
    + HealthStore
    + TicketStore
    + AgentStore
    + ProvenanceStore
    + PrivacyStore
    + OutboxStore
    + EquityStore
    + ExperimentStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> &'static str;
    fn ping(&self) -> Result<()>;
    /// The cluster's nodes and partition leases: PostgreSQL only (one embedded SQLite file
    /// serves one process).
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        None
    }
}

/// Cluster membership and partition ownership, kept in the shared database and timed by its
/// clock. A lease is held by one node for a time; taking it from another node (or after
/// letting it lapse) gives it a new, larger epoch, and every fenced write names the epoch it
/// was made under.
pub trait ClusterStore: Send + Sync {
    /// Records that `node` is alive for `ttl_ms` more. Refused (`Conflict`) while another
    /// process (`instance`) holds the same node id with a fresh heartbeat.
    fn heartbeat(&self, node: &str, instance: &str, ttl_ms: i64) -> Result<()>;
    /// Drops the node's heartbeat and every lease it holds (a clean stop).
    fn leave(&self, node: &str, instance: &str) -> Result<()>;
    /// Nodes whose heartbeat has not expired, by id.
    fn live_nodes(&self) -> Result<Vec<ClusterNode>>;
    /// Every partition's lease, by partition.
    fn leases(&self) -> Result<Vec<Lease>>;
    /// Renews the lease if `node` holds it, or takes it when it is free or expired; `None`
    /// when another node holds it.
    fn acquire(&self, partition: i32, node: &str, ttl_ms: i64) -> Result<Option<Lease>>;
    /// Gives a held lease up at once (another node may take it on its next round).
    fn release(&self, partition: i32, node: &str, epoch: i64) -> Result<bool>;
    /// The fenced write of an owner: moves the partition's applied position to `seq`, only
    /// while `node` holds the lease at `epoch` and it has not expired. `Conflict` otherwise.
    fn advance_applied(&self, partition: i32, node: &str, epoch: i64, seq: i64) -> Result<()>;
    /// Every epoch granted for a partition, oldest first: `(epoch, owner)`.
    fn lease_history(&self, partition: i32) -> Result<Vec<(i64, String)>>;
    /// The owner's apply of a batch from the ingest log, in one transaction: the fence is
    /// checked (and the lease row locked, so the lease cannot change hands until it commits),
    /// the events are appended as [`EventStore::append`] would (the dedup window drops what
    /// was applied before, so a redelivery is harmless), the position moves up to the
    /// batch's highest and the batch is recorded. `Conflict` when the fence no longer holds:
    /// nothing is written.
    fn apply(&self, fence: &Fence, batch: &[LogEvent]) -> Result<Applied>;
    /// Every batch applied to a partition, in the order they committed.
    fn applies(&self, partition: i32) -> Result<Vec<ApplyRecord>>;
    /// Forgets apply records older than `older_than_ms` (by the database's clock).
    fn prune_applies(&self, older_than_ms: i64) -> Result<u64>;
}

/// Tenants, their keys, users and sessions, and the documents a tenant keeps (settings).
pub trait TenantStore {
    fn create_tenant(&self, name: &str) -> Result<Tenant>;
    fn list_tenants(&self) -> Result<Vec<Tenant>>;
    fn tenant(&self, id: &str) -> Result<Option<Tenant>>;
    fn insert_key(&self, key: &ApiKey) -> Result<()>;
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>>;
    /// Returns false when no such unrevoked key exists in the tenant.
    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool>;
    fn insert_user(&self, user: &User) -> Result<()>;
    fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    fn list_users(&self, tenant: &str) -> Result<Vec<User>>;
    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()>;
    fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<User>>;
    fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Disables (Some) or re-enables (None) a user; disabling ends their sessions. False
    /// when the tenant has no such user.
    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool>;
    /// Sets a user's password hash and ends their sessions.
    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool>;
    /// Ends every session of a user; None when the tenant has no such user.
    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>>;
    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()>;
    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>>;
}

/// The event log: appending (group-committed requests), quarantine, the dedup window, the
/// columnar copy of the log, and the overview counts.
pub trait EventStore {
    /// Appends several requests in one transaction; the outcomes are in request order.
    fn append(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>>;
    /// `append` whose commit may not be on disk yet when it returns: the caller must call
    /// `sync_appended` and see it succeed before it tells anyone the events are stored. The
    /// committer syncs one group while the next is written, so the one writer never waits
    /// for the disk. A backend whose commits are durable anyway (PostgreSQL) appends.
    fn append_unsynced(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        self.append(requests)
    }
    /// Makes every commit `append_unsynced` has returned durable.
    fn sync_appended(&self) -> Result<()> {
        Ok(())
    }
    /// Work ingest puts off while requests wait (SQLite: indexing the log's tail by
    /// identifier); the committer calls it once no request has come for a moment.
    fn upkeep_while_idle(&self) -> Result<()> {
        Ok(())
    }
    fn quarantine(&self, tenant: &str, limit: u32) -> Result<Vec<QuarantineEntry>>;
    /// What quarantine took in per day from `since_day` (YYYY-MM-DD) on, newest first.
    fn quarantine_days(&self, tenant: &str, since_day: &str) -> Result<Vec<QuarantineDay>>;
    fn prune_dedup(&self, older_than_ms: i64) -> Result<u64>;
    /// The highest event sequence number in the store (all tenants): reading up to it is safe.
    fn max_event_seq(&self) -> Result<i64>;
    /// The last event seq the tenant's blocks cover (0 when it has none).
    fn event_blocks_head(&self, tenant: &str) -> Result<i64>;
    /// Writes the tenant's next block of `block` named events (the server uses
    /// [`columns::BLOCK_EVENTS`]) when that many are waiting after its blocks; returns how
    /// many went in, 0 when nothing was written.
    fn compact_events(&self, tenant: &str, block: usize) -> Result<usize>;
    /// The tenant's blocks in log order, `limit` at a time, after the block that ends at
    /// `after_seq` (0: from the first).
    fn event_blocks(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<columns::EventBlock>>;
    fn trigger_cursor(&self, tenant: &str) -> Result<Option<i64>>;
    fn set_trigger_cursor(&self, tenant: &str, seq: i64) -> Result<()>;
    /// The tenant's events in `(after, upto]` named one of `names`, oldest first.
    fn trigger_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<TriggerEvent>>;
    /// Records an invitation (and, when it has a link, the link) in one transaction; false
    /// when this survey already invited for this event.
    fn create_invitation(
        &self,
        tenant: &str,
        inv: &Invitation,
        link: Option<(&str, &SurveyLink)>,
    ) -> Result<bool>;
    fn list_invitations(
        &self,
        tenant: &str,
        status: Option<&str>,
        survey_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Invitation>>;
    /// Marks a pending invitation delivered or failed; None when there is no such invitation.
    fn mark_invitation(
        &self,
        tenant: &str,
        id: i64,
        status: &str,
        detail: &str,
    ) -> Result<Option<Invitation>>;
    /// Invitations per survey and status.
    fn invitation_counts(&self, tenant: &str) -> Result<Vec<(String, String, i64)>>;
    fn overview(&self, tenant: &str, days: u32, now_ms: i64) -> Result<Overview>;
}

/// One customer across channels: profiles, their timeline, the merge ledger, blocked
/// identifiers, and the projections rebuilt from the log.
pub trait IdentityStore {
    fn profile_for(&self, tenant: &str, identifier: &Identifier) -> Result<Option<String>>;
    fn profile(&self, tenant: &str, id: &str) -> Result<Option<Profile>>;
    fn search_profiles(&self, tenant: &str, query: &str, limit: u32)
        -> Result<Vec<ProfileSummary>>;
    fn timeline(
        &self,
        tenant: &str,
        profile: &Profile,
        page: &TimelinePage,
    ) -> Result<Vec<StoredEvent>>;
    fn ledger(&self, tenant: &str, profile_id: &str) -> Result<Vec<LedgerEntry>>;
    /// Blocks an identifier and rebuilds the tenant's identity projection without it.
    fn block_identifier(
        &self,
        tenant: &str,
        identifier: &Identifier,
        reason: &str,
        actor: &str,
    ) -> Result<RebuildStats>;
    fn blocked(&self, tenant: &str) -> Result<Vec<Identifier>>;
    /// Every user and anonymous id of the tenant with its profile, keyed as blocks key
    /// them ([`columns::user_key`], [`columns::anon_key`]).
    fn identity_keys(&self, tenant: &str) -> Result<Vec<(String, String)>>;
    /// Each profile's account (the first by id when it has several; none when it has none),
    /// for the profiles given, or for every profile of the tenant when `profiles` is None.
    fn accounts_of(
        &self,
        tenant: &str,
        profiles: Option<&[String]>,
    ) -> Result<std::collections::HashMap<String, String>>;
    /// Recomputes every projection of the tenant (or all tenants) from the event log.
    fn rebuild(&self, tenant: Option<&str>) -> Result<RebuildStats>;
    /// A canonical dump of the identity projection, used to prove rebuild == incremental.
    fn identity_snapshot(&self, tenant: &str) -> Result<Vec<(String, String, String)>>;
}

/// Answers and their rollups.
pub trait FeedbackStore {
    /// Stores answers; an idempotency key already stored is a duplicate, not an error.
    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome>;
    /// Text answers collected in `[from_ms, to_ms)`, newest first, with their response's NPS.
    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>>;
    /// NPS answers per response in `[from_ms, to_ms)` (for mentioners vs others).
    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>>;
    /// A customer's answers with their text, newest first, including those given under a
    /// profile since merged into this one.
    fn profile_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        limit: u32,
    ) -> Result<Vec<ProfileAnswer>>;
    /// Scored answers of one type between two days (inclusive, `YYYY-MM-DD`), from the rollup.
    fn feedback_histogram(
        &self,
        tenant: &str,
        field_type: &str,
        from_day: &str,
        to_day: &str,
        by: Option<Slice>,
    ) -> Result<Vec<HistogramRow>>;
    /// Answers collected in `[from_ms, to_ms)` that pass the filters, newest first.
    fn list_answers(&self, tenant: &str, q: &AnswerQuery) -> Result<Vec<ListedAnswer>>;
    /// A customer's answers since `since_ms`, newest first.
    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>>;
}

/// The theme registry, assignments and their rollup.
pub trait ThemeStore {
    fn load_themes(&self, tenant: &str) -> Result<ThemeState>;
    /// Saves theme documents (and a discovery's vocabulary, bumping the version) atomically.
    fn save_themes(&self, tenant: &str, save: &ThemeSave) -> Result<i64>;
    /// Sets the theme of text answers (replacing earlier assignments); call
    /// [`Store::refresh_theme_rollup`] after a series of these.
    fn assign_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()>;
    /// Recomputes the per-theme rollup from the assignments.
    fn refresh_theme_rollup(&self, tenant: &str) -> Result<()>;
    /// Gives answers that have no theme yet theme, and counts them in the rollup.
    fn place_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()>;
    /// The highest feedback id with a theme: text answers above it still need one.
    fn theme_watermark(&self, tenant: &str) -> Result<i64>;
    /// Text answers with an id above `after_id`, oldest first.
    fn text_answers_after(
        &self,
        tenant: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>>;
    /// Text answers currently assigned to any of the themes.
    fn theme_members(
        &self,
        tenant: &str,
        theme_ids: &[String],
        limit: u32,
    ) -> Result<Vec<TextAnswer>>;
    fn theme_days(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeDay>>;
    fn theme_nps(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeNps>>;
    fn theme_accounts(
        &self,
        tenant: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ThemeAccount>>;
    fn theme_edits(&self, tenant: &str, limit: u32) -> Result<Vec<ThemeEdit>>;
    /// Tenants that have run a theme discovery.
    fn themed_tenants(&self) -> Result<Vec<String>>;
}

/// Survey definitions, links, event triggers and invitations.
pub trait SurveyStore {
    /// Saves a definition as the next version of the survey; returns that version.
    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64>;
    /// A version's definition (the latest when `version` is None).
    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>>;
    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>>;
    fn create_link(&self, token_hash: &str, link: &SurveyLink) -> Result<()>;
    /// When the customer was invited (any survey, or one survey) since a time, newest first.
    fn invitations(
        &self,
        tenant: &str,
        identifier: &str,
        survey_id: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<i64>>;
    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>>;
    /// Records a display (first one only), a response, or an answered follow-up.
    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()>;
}

/// Journey definitions, synthetic checks, and the walked projections with their cursor.
pub trait JourneyStore {
    /// Saves a definition as the next version of the journey; returns it. With `carry` the
    /// measurements move to the new version (its stages measure the same thing), else those of
    /// older versions are dropped and the new one is measured from the start of the log.
    fn save_journey(&self, tenant: &str, j: &StoredJourney, carry: bool) -> Result<i64>;
    /// One version of a journey (the latest when `version` is None).
    fn journey(
        &self,
        tenant: &str,
        journey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredJourney>>;
    /// The latest version of every journey.
    fn list_journeys(&self, tenant: &str) -> Result<Vec<StoredJourney>>;
    /// Every version of a journey, newest first.
    fn journey_history(&self, tenant: &str, journey_id: &str) -> Result<Vec<StoredJourney>>;
    fn record_journey_check(
        &self,
        tenant: &str,
        name: &str,
        passed: bool,
        detail: &serde_json::Value,
    ) -> Result<i64>;
    /// Newest first, optionally of one check.
    fn journey_check_runs(
        &self,
        tenant: &str,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JourneyCheckRun>>;
    fn journey_cursor(&self, tenant: &str, journey_id: &str, version: i64)
        -> Result<JourneyCursor>;
    /// Events in `(after, upto]` named one of `names`, oldest first, with their customer.
    fn journey_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<JourneyEventRow>>;
    /// Scored and text answers after an id, oldest first.
    fn journey_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<JourneyAnswer>>;
    /// Whether the tenant has ever sent an event of this name.
    fn event_name_seen(&self, tenant: &str, name: &str) -> Result<bool>;
    fn journey_positions(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        profiles: &[String],
    ) -> Result<std::collections::HashMap<String, cxm_domain::journey_progress::Position>>;
    /// The stage each customer was in at each time (their position if they had entered it
    /// by then, else the ended visit spanning the time).
    fn journey_stage_at(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        at: &[(String, i64)],
    ) -> Result<Vec<Option<usize>>>;
    fn journey_stats(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<Vec<(usize, cxm_domain::journey_progress::StageStats)>>;
    /// Per `(stage, cutoff)`: customers in the stage, not done, who entered before the cutoff.
    fn journey_stalled(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        cutoffs: &[(usize, i64)],
    ) -> Result<Vec<u64>>;
    /// Saves a pass of the journey worker; false when the cursor was not at `p.from`.
    fn save_journey_progress(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        p: &JourneyProgress,
    ) -> Result<bool>;
}

/// Per-account daily facts, signal sets, scores and alerts.
pub trait HealthStore {
    fn health_cursor(&self, tenant: &str) -> Result<HealthCursor>;
    /// Events in `(after, upto]`, oldest first, each with its account (None: no account known).
    fn health_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<HealthEventRow>>;
    /// NPS and CSAT answers after an id, oldest first, with their account.
    fn account_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<AccountAnswer>>;
    /// Adds to the accounts' daily facts and moves the cursor, in one transaction; false (and
    /// nothing written) when the cursor was not at `from`.
    fn add_account_days(
        &self,
        tenant: &str,
        from: HealthCursor,
        to: HealthCursor,
        days: &[(String, cxm_domain::health::AccountDay)],
    ) -> Result<bool>;
    /// Every account with its traits and its daily facts since a day.
    fn accounts_for_health(
        &self,
        tenant: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<AccountRecord>>;
    fn save_signal_set(&self, tenant: &str, definition: &str, actor: &str) -> Result<i64>;
    /// The latest signal set: (version, definition).
    fn signal_set(&self, tenant: &str) -> Result<Option<(i64, String)>>;
    /// Replaces the accounts' latest health and records the day's score in the history.
    fn save_account_health(
        &self,
        tenant: &str,
        rows: &[AccountHealthRow],
        day: chrono::NaiveDate,
    ) -> Result<()>;
    /// Latest health, lowest score first, optionally of one band.
    fn account_health(
        &self,
        tenant: &str,
        band: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AccountHealthRow>>;
    fn account_health_one(&self, tenant: &str, group_id: &str) -> Result<Option<AccountHealthRow>>;
    fn band_counts(&self, tenant: &str) -> Result<Vec<BandCount>>;
    /// Daily scores since a day, oldest first.
    fn health_trend(
        &self,
        tenant: &str,
        group_id: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>>;
    /// Opens each alert unless one for the same account, kind and signal is still unresolved,
    /// and resolves the unresolved alerts named by `clear` (account, kind, signal), in one
    /// transaction; returns the ids opened and the number resolved.
    fn sync_alerts(
        &self,
        tenant: &str,
        open: &[NewAlert],
        clear: &[(String, String, String)],
        actor: &str,
    ) -> Result<(Vec<i64>, u64)>;
    /// Newest first, optionally of one status.
    fn list_alerts(&self, tenant: &str, status: Option<&str>, limit: u32) -> Result<Vec<Alert>>;
    fn alert(&self, tenant: &str, id: i64) -> Result<Option<Alert>>;
    fn set_alert_status(&self, tenant: &str, id: i64, status: &str, actor: &str) -> Result<bool>;
    /// An account's traits.
    fn account_traits(&self, tenant: &str, group_id: &str) -> Result<Option<serde_json::Value>>;
}

/// Remediation tickets, their timeline and rules.
pub trait TicketStore {
    /// Stores a ticket (its `id` and timestamps are assigned) with a `created` event.
    fn create_ticket(&self, tenant: &str, t: &Ticket) -> Result<i64>;
    /// Like [`Store::create_ticket`] for a ticket a rule opens: None (nothing stored) while an
    /// unclosed ticket with the same rule key exists.
    fn create_ticket_once(&self, tenant: &str, t: &Ticket, rule_key: &str) -> Result<Option<i64>>;
    /// Profiles that belong to an account (at most `limit`).
    fn account_profiles(&self, tenant: &str, group_id: &str, limit: u32) -> Result<Vec<String>>;
    fn ticket_rules(&self, tenant: &str) -> Result<Option<String>>;
    fn save_ticket_rules(&self, tenant: &str, definition: &str, actor: &str) -> Result<()>;
    fn ticket(&self, tenant: &str, id: i64) -> Result<Option<Ticket>>;
    /// Newest first, optionally of one state.
    fn list_tickets(&self, tenant: &str, state: Option<&str>, limit: u32) -> Result<Vec<Ticket>>;
    /// Applies a change and records it on the timeline in one transaction; false when the
    /// ticket is not (or no longer) in `from_state`.
    fn change_ticket(&self, tenant: &str, id: i64, c: &TicketChange) -> Result<bool>;
    /// Records an event without changing the ticket (a failed close, a comment).
    fn note_ticket(
        &self,
        tenant: &str,
        id: i64,
        actor: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<()>;
    fn ticket_events(&self, tenant: &str, id: i64) -> Result<Vec<TicketEvent>>;
    /// CSAT answers of the accounts since a time: (top-two-box answers, all answers).
    fn csat_of_accounts(
        &self,
        tenant: &str,
        accounts: &[String],
        since_ms: i64,
    ) -> Result<(u64, u64)>;
}

/// Governed agents: agents, policy sets, the decision log, reviews and step-ups.
pub trait AgentStore {
    /// Registers an agent or updates its kind, description and disclosure.
    fn save_agent(&self, tenant: &str, a: &Agent) -> Result<()>;
    fn agents(&self, tenant: &str) -> Result<Vec<Agent>>;
    fn agent(&self, tenant: &str, name: &str) -> Result<Option<Agent>>;
    /// Saves the next version of the tenant's policies (activating it when asked) with its
    /// audit entry; returns the version.
    fn save_policy_set(
        &self,
        tenant: &str,
        text: &str,
        note: &str,
        actor: &str,
        activate: bool,
    ) -> Result<i64>;
    /// Makes a saved version the active one; false when there is no such version.
    fn activate_policy_set(&self, tenant: &str, version: i64, actor: &str) -> Result<bool>;
    /// Every version, newest first.
    fn policy_sets(&self, tenant: &str) -> Result<Vec<PolicySetRow>>;
    /// The version activated last.
    fn active_policy_set(&self, tenant: &str) -> Result<Option<PolicySetRow>>;
    /// Logs decisions (any tenants) with their audit entries in one transaction.
    fn record_decisions(&self, batch: &[NewDecision]) -> Result<()>;
    fn decision(&self, tenant: &str, id: &str) -> Result<Option<StoredDecision>>;
    /// Newest first.
    fn decisions(&self, tenant: &str, q: &DecisionQuery) -> Result<Vec<StoredDecision>>;
    /// Settles a pending decision and chains the review.
    fn review_decision(
        &self,
        tenant: &str,
        r: &cxm_domain::decision::Review,
    ) -> Result<ReviewResult>;
    /// Records what the agent reported after acting (chained); None when there is no such
    /// decision.
    fn report_outcome(
        &self,
        tenant: &str,
        id: &str,
        resolved: bool,
        intent: Option<&str>,
        actor: &str,
        at_ms: i64,
    ) -> Result<Option<StoredDecision>>;
    /// Marks a decision used (chained); false when it was already used.
    fn redeem_decision(&self, tenant: &str, id: &str, actor: &str, at_ms: i64) -> Result<bool>;
    /// Decisions in the order of their audit entries, after `after_seq` (for verification).
    fn decisions_by_audit_seq(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredDecision>>;
    fn save_step_up(&self, tenant: &str, s: &StepUp) -> Result<()>;
    fn step_up(&self, tenant: &str, id: &str) -> Result<Option<StepUp>>;
    /// One attempt at the code: marks it verified when `code_hash` matches, else spends an
    /// attempt. Returns the step-up after the attempt (None when there is none).
    fn attempt_step_up(
        &self,
        tenant: &str,
        id: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<StepUp>>;
}

/// Signing keys, signed messages, content credentials keys, audit checkpoints and the
/// admin entries of the audit chain.
pub trait ProvenanceStore {
    /// Adds a key and makes it the one that signs (the previous one retires).
    fn add_signing_key(&self, tenant: &str, k: &SigningKeyRow, actor: &str) -> Result<()>;
    /// Every key, newest first (secrets included: callers never serialise them).
    fn signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRow>>;
    /// False when there is no such key or it was already revoked.
    fn revoke_signing_key(
        &self,
        tenant: &str,
        kid: &str,
        reason: &str,
        actor: &str,
    ) -> Result<bool>;
    /// Records a signed message with its audit entry.
    fn save_signed_message(&self, tenant: &str, m: &SignedMessage, actor: &str) -> Result<()>;
    fn signed_message(&self, tenant: &str, id: &str) -> Result<Option<SignedMessage>>;
    /// The tenant's C2PA certificate chain and key (PEM), if made.
    fn content_key(&self, tenant: &str) -> Result<Option<(String, String)>>;
    /// Keeps the first one saved: two servers making one at once end up with the same.
    fn save_content_key(&self, tenant: &str, chain_pem: &str, key_pem: &str) -> Result<()>;
    fn save_checkpoint(&self, tenant: &str, c: &AuditCheckpoint) -> Result<()>;
    /// Oldest first.
    fn checkpoints(&self, tenant: &str) -> Result<Vec<AuditCheckpoint>>;
    /// Appends one admin action to the tenant's audit chain.
    fn append_audit(
        &self,
        tenant: &str,
        e: &cxm_domain::audit::NewAuditEntry,
    ) -> Result<cxm_domain::audit::AuditEntry>;
    /// Entries after `after_seq`, in order.
    fn audit_entries(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<cxm_domain::audit::AuditEntry>>;
}

/// Erasure, the access export, consent and retention.
pub trait PrivacyStore {
    /// Erases a customer (the profile and every profile merged into it) everywhere, leaving a
    /// tombstone with counts and an audit entry; None when there is no such profile.
    fn erase_customer(
        &self,
        tenant: &str,
        profile_id: &str,
        erasure_id: &str,
        actor: &str,
    ) -> Result<Option<ErasureCounts>>;
    /// Everything an erasure of the customer would remove, row by row under the kinds the
    /// erasure counts, and those counts; nothing changes. None when there is no such profile.
    fn customer_holdings(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Option<(ErasureHeld, ErasureCounts)>>;
    /// Adds a consent record to the customer's history.
    fn add_consent(
        &self,
        tenant: &str,
        profile_id: &str,
        c: &cxm_domain::consent::ConsentRecord,
    ) -> Result<()>;
    /// The customer's consent history, newest first.
    fn consents(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Vec<cxm_domain::consent::ConsentRecord>>;
    /// Retention periods in days by data class, as the tenant set them (see
    /// [`effective_retention`] for the defaults of the classes it did not).
    fn retention(&self, tenant: &str) -> Result<std::collections::BTreeMap<String, i64>>;
    /// Sets (Some) or clears (None) a class's period.
    fn set_retention(
        &self,
        tenant: &str,
        class: &str,
        days: Option<i64>,
        actor: &str,
    ) -> Result<()>;
    /// Removes what is past its period as of `now_ms`.
    fn purge(&self, tenant: &str, now_ms: i64) -> Result<Purged>;
}

/// What leaves cxm later: webhook endpoints and deliveries, and queued email.
pub trait OutboxStore {
    fn add_webhook(&self, tenant: &str, e: &WebhookEndpoint) -> Result<()>;
    fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>>;
    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookEndpoint>>;
    /// Returns false when the tenant has no such endpoint.
    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<bool>;
    /// Queues one event for every active endpoint of the tenant that wants its type; returns
    /// how many deliveries were queued.
    /// `secret` is merged into the payload's `data` when it is sent, and is kept sealed
    /// until then and dropped once the delivery is settled (a one-time code).
    fn queue_webhook(
        &self,
        tenant: &str,
        event_type: &str,
        payload: &serde_json::Value,
        secret: Option<&serde_json::Value>,
        now_ms: i64,
    ) -> Result<usize>;
    /// Pending deliveries due by `now_ms`, oldest first, across tenants. PostgreSQL claims
    /// them for a minute (skipping rows another node is claiming), so every node of a
    /// cluster drains the one outbox and none sends a delivery another is sending; the
    /// embedded store serves one process and only reads.
    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>>;
    /// Records an attempt: delivered, retry at `next_attempt_at_ms`, or failed for good.
    fn settle_webhook(
        &self,
        id: i64,
        status: &str,
        next_attempt_at_ms: i64,
        code: Option<i64>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;
    fn webhook_deliveries(
        &self,
        tenant: &str,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;
    /// Queues emails (their ids are ignored); one per customer, kind and reference, so a
    /// second queueing of the same is a no-op. Returns how many were new.
    fn queue_mail(&self, tenant: &str, mails: &[OutboundMail]) -> Result<usize>;
    /// Emails of a tenant, oldest first: by status, or every one of a kind and reference.
    fn list_mail(
        &self,
        tenant: &str,
        status: Option<&str>,
        about: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<OutboundMail>>;
    /// Settles a pending email as `sent` or `failed` with the relay's answer.
    fn mark_mail(&self, tenant: &str, id: i64, status: &str, detail: &str) -> Result<()>;
}

/// What customer value is computed from.
pub trait EquityStore {
    /// Events in `(after, upto]` named one of `names`, oldest first, with the amount they carry.
    fn amount_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<AmountEvent>>;
}

/// Experiments, their exposures and the views that count them.
pub trait ExperimentStore {
    /// `Experiment Viewed` events in `(after, upto]` whose `experiment_id` is `experiment`.
    fn experiment_views(
        &self,
        tenant: &str,
        experiment: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<ViewEvent>>;
    /// Creates or replaces an experiment row (the caller keeps the history).
    fn save_experiment(&self, tenant: &str, e: &StoredExperiment) -> Result<()>;
    fn experiment(&self, tenant: &str, id: &str) -> Result<Option<StoredExperiment>>;
    fn experiments(&self, tenant: &str) -> Result<Vec<StoredExperiment>>;
    /// Records a customer's first exposure; returns the arm of the first one (a later call
    /// with another arm does not move them).
    fn expose(&self, tenant: &str, x: &Exposure) -> Result<String>;
    fn exposures(&self, tenant: &str, experiment: &str) -> Result<Vec<Exposure>>;
}
