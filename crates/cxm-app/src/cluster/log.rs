//! The ingest log of a cluster on NATS JetStream. Any node publishes a request's events to
//! the stream of the tenant's partition and answers only once the stream has acknowledged
//! every one (with replicas, a quorum has it on disk); the partition's owner pulls them from
//! its consumer and applies them ([`super::apply`]). Publishing is retried with the same
//! message ids through a leader election, so a retry is never a second copy; past the
//! deadline the client is told to come back (`503` with `Retry-After`), and because the ids
//! are the same when it does, that is safe too.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use cxm_domain::NormalizedEvent;
use cxm_store::{AppendOutcome, AppendRequest};

use super::partition_of;
use crate::error::{AppError, AppResult, ErrorCode};

/// Streams the partitions are spread over: few enough that a small cluster is not a forest
/// of stream leaders, enough that one stream's leader election stalls only a quarter of
/// the tenants.
pub const STREAMS: u32 = 4;

/// How long a publish keeps retrying before the client is told to come back.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(8);

/// JetStream's own duplicate window, for publish retries. The owner's dedup in PostgreSQL
/// (the tenant's window, a week by default) is the authority; this only keeps retries out
/// of the log, so it stays short (its ids are held in the servers' memory).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long the log keeps what no owner has applied yet (every node down, say).
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// An owner that took a batch and died: the batch goes to the next owner after this.
pub const ACK_WAIT: Duration = Duration::from_secs(15);

/// What the cluster's log is and where it lives.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Server URLs (`nats://h1:4222,nats://h2:4222`); the client finds the rest.
    pub urls: Vec<String>,
    pub partitions: u32,
    /// Copies of each stream (3 in a cluster; 1 is what a single server can give).
    pub replicas: usize,
    /// The name this node shows the servers.
    pub node: String,
}

/// One event on the wire: the event as normalised on the node that took the request, and
/// who sent it. Normalising once, where the request arrived, spreads that work over every
/// node and keeps the owner's apply to the store's work alone.
#[derive(Serialize, Deserialize)]
pub struct Wire {
    #[serde(rename = "t")]
    pub tenant_id: String,
    #[serde(rename = "k")]
    pub write_key_id: String,
    #[serde(rename = "e")]
    pub event: NormalizedEvent,
}

/// The stream that holds partition `p`.
pub fn stream_name(p: i32) -> String {
    format!("CXM_EV_{}", (p as u32) % STREAMS)
}

/// The subject of a tenant's events in partition `p`. The tenant is the last token, for
/// people reading the stream; it is made token-safe, and the payload carries it exactly.
pub fn subject(p: i32, tenant: &str) -> String {
    let t: String = tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("cxm.ev.{p}.{t}")
}

/// The subjects of one stream: every partition `p` with `p % STREAMS == k`.
fn subjects_of(k: u32, partitions: u32) -> Vec<String> {
    (0..partitions)
        .filter(|p| p % STREAMS == k)
        .map(|p| format!("cxm.ev.{p}.*"))
        .collect()
}

/// `Nats-Msg-Id`: the same (tenant, write key, messageId) is the same message, whichever
/// node takes it and however often the SDK retries.
pub fn message_id(tenant: &str, write_key: &str, message_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [tenant, write_key, message_id] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The durable consumer that the owner of partition `p` pulls from.
pub fn consumer_name(p: i32) -> String {
    format!("cxm-p{p}")
}

fn stream_config(k: u32, cfg: &LogConfig, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("CXM_EV_{k}"),
        subjects: subjects_of(k, cfg.partitions),
        // applied and acknowledged means in PostgreSQL: the log keeps only what its one
        // consumer per partition has not acknowledged (the consumers are durable and made
        // before anything is published, so nothing is published to no one)
        retention: stream::RetentionPolicy::Interest,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: MAX_AGE,
        ..Default::default()
    }
}

/// How a stream found on the servers differs from what this version needs, in words.
fn differences(have: &stream::Config, want: &stream::Config) -> Vec<String> {
    let mut out = vec![];
    let mut a = have.subjects.clone();
    let mut b = want.subjects.clone();
    a.sort();
    b.sort();
    if a != b {
        out.push(format!(
            "its subjects are {} where {} partitions need {}",
            a.join(" "),
            b.len() as u32 * STREAMS,
            b.join(" ")
        ));
    }
    if have.retention != want.retention {
        out.push(format!(
            "its retention is {:?}, not Interest",
            have.retention
        ));
    }
    if have.storage != want.storage {
        out.push(format!("its storage is {:?}, not File", have.storage));
    }
    if have.num_replicas != want.num_replicas {
        out.push(format!(
            "it has {} replicas where {} were asked for",
            have.num_replicas, want.num_replicas
        ));
    }
    out
}

/// A node's handle on the log.
pub struct IngestLog {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub config: LogConfig,
    /// The replicas the streams have (1 when the servers are not a JetStream cluster).
    pub replicas: usize,
    pub metrics: LogMetrics,
}

/// Publish latency and outcomes, for `/metrics`.
#[derive(Default)]
pub struct LogMetrics {
    pub published: std::sync::atomic::AtomicU64,
    pub publish_retries: std::sync::atomic::AtomicU64,
    pub publish_failures: std::sync::atomic::AtomicU64,
    /// Microseconds spent waiting for acknowledgements, summed over requests.
    pub publish_micros: std::sync::atomic::AtomicU64,
    pub publish_requests: std::sync::atomic::AtomicU64,
}

fn unavailable(detail: String) -> AppError {
    let mut e = AppError::new(ErrorCode::LogUnavailable, detail);
    e.retry_after_secs = Some(2);
    e
}

impl IngestLog {
    /// Connects and makes sure every stream exists with this version's settings. Fails with
    /// a sentence an operator can act on: servers unreachable, JetStream off, or a stream
    /// made by another version (or another `--partitions`) in the way.
    pub async fn connect(config: LogConfig) -> AppResult<IngestLog> {
        let addrs: Vec<async_nats::ServerAddr> = config
            .urls
            .iter()
            .map(|u| {
                u.parse().map_err(|e| {
                    AppError::new(
                        ErrorCode::InvalidParameter,
                        format!("--nats-url {u:?} is not a NATS server address: {e}"),
                    )
                })
            })
            .collect::<AppResult<_>>()?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("cxm {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            // a lost server is found again by itself; ingest answers 503 meanwhile
            .max_reconnects(None)
            .connect(addrs)
            .await
            .map_err(|e| {
                AppError::new(
                    ErrorCode::LogUnavailable,
                    format!("cannot reach NATS at {}: {e}", config.urls.join(",")),
                )
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(4));
        let mut replicas = config.replicas.max(1);
        for k in 0..STREAMS.min(config.partitions) {
            replicas = ensure_stream(&js, k, &config, replicas).await?;
        }
        let log = IngestLog {
            client,
            js,
            config,
            replicas,
            metrics: LogMetrics::default(),
        };
        for p in 0..log.config.partitions as i32 {
            log.consumer(p).await?;
        }
        Ok(log)
    }

    /// Whether the client holds a connection to a server now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes a request's events and resolves once the stream has acknowledged each one,
    /// retrying the ones that failed with their same ids until the deadline.
    pub async fn publish(&self, req: &AppendRequest) -> AppResult<AppendOutcome> {
        use std::sync::atomic::Ordering::Relaxed;
        let started = Instant::now();
        let p = partition_of(&req.tenant_id, self.config.partitions);
        let subject = subject(p, &req.tenant_id);
        let mut msgs = Vec::with_capacity(req.events.len());
        for ev in &req.events {
            let body = serde_json::to_vec(&WireRef {
                tenant_id: &req.tenant_id,
                write_key_id: &req.write_key_id,
                event: ev,
            })
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("encoding an event: {e}")))?;
            msgs.push((
                message_id(&req.tenant_id, &req.write_key_id, &ev.message_id),
                bytes::Bytes::from(body),
            ));
        }
        let deadline = started + PUBLISH_DEADLINE;
        let mut pending: Vec<usize> = (0..msgs.len()).collect();
        let mut duplicates = 0u32;
        let mut attempt = 0u32;
        loop {
            // pipelined: every publish is on the wire before the first acknowledgement is read
            let mut acks = Vec::with_capacity(pending.len());
            for &i in &pending {
                let (id, body) = &msgs[i];
                let publish = jetstream::context::Publish::build()
                    .payload(body.clone())
                    .message_id(id);
                acks.push((i, self.js.send_publish(subject.clone(), publish).await));
            }
            let mut failed = vec![];
            let mut last_error = None;
            for (i, sent) in acks {
                match sent {
                    Ok(ack) => match ack.await {
                        Ok(a) => {
                            if a.duplicate && attempt == 0 {
                                duplicates += 1;
                            }
                        }
                        Err(e) => {
                            last_error = Some(e.to_string());
                            failed.push(i)
                        }
                    },
                    Err(e) => {
                        last_error = Some(e.to_string());
                        failed.push(i)
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            let error = last_error.unwrap_or_default();
            if Instant::now() >= deadline {
                self.metrics.publish_failures.fetch_add(1, Relaxed);
                tracing::warn!(tenant = %req.tenant_id, partition = p, unacknowledged = failed.len(), error = %error, "publish to the ingest log gave up");
                return Err(unavailable(format!(
                    "the ingest log did not acknowledge {} of {} events in {} s ({error}); nothing unacknowledged was kept: send the batch again",
                    failed.len(),
                    msgs.len(),
                    PUBLISH_DEADLINE.as_secs()
                )));
            }
            attempt += 1;
            self.metrics.publish_retries.fetch_add(1, Relaxed);
            tracing::debug!(tenant = %req.tenant_id, partition = p, unacknowledged = failed.len(), error = %error, "retrying publish");
            // a leader election takes a few seconds: back off, but not past the deadline
            let wait = Duration::from_millis(100 * u64::from(attempt.min(10)));
            tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
            pending = failed;
        }
        self.metrics.published.fetch_add(msgs.len() as u64, Relaxed);
        self.metrics.publish_requests.fetch_add(1, Relaxed);
        self.metrics
            .publish_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        Ok(AppendOutcome {
            accepted: msgs.len() as u32 - duplicates,
            duplicates,
            quarantined: 0,
        })
    }

    /// The pull consumer of partition `p`, made on first use.
    pub async fn consumer(&self, p: i32) -> AppResult<consumer::PullConsumer> {
        let stream = self
            .js
            .get_stream(stream_name(p))
            .await
            .map_err(|e| unavailable(format!("stream {} is not there: {e}", stream_name(p))))?;
        let filter = format!("cxm.ev.{p}.*");
        stream
            .get_or_create_consumer(
                &consumer_name(p),
                consumer::pull::Config {
                    durable_name: Some(consumer_name(p)),
                    filter_subject: filter,
                    // each event is acknowledged once applied: acknowledging "all up to" the
                    // last would also settle events pulled by a dead owner and never applied
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                unavailable(format!(
                    "consumer {} of {}: {e}",
                    consumer_name(p),
                    stream_name(p)
                ))
            })
    }
}

#[derive(Serialize)]
struct WireRef<'a> {
    #[serde(rename = "t")]
    tenant_id: &'a str,
    #[serde(rename = "k")]
    write_key_id: &'a str,
    #[serde(rename = "e")]
    event: &'a NormalizedEvent,
}

/// Makes stream `k` or checks the one that is there; answers the replicas it has.
async fn ensure_stream(
    js: &jetstream::Context,
    k: u32,
    cfg: &LogConfig,
    replicas: usize,
) -> AppResult<usize> {
    let want = stream_config(k, cfg, replicas);
    match js.get_stream(&want.name).await {
        Ok(mut s) => {
            let have = s
                .info()
                .await
                .map_err(|e| unavailable(format!("reading stream {}: {e}", want.name)))?
                .config
                .clone();
            // a stream made on a single server keeps its one replica; that is not a conflict
            let want = stream_config(k, cfg, have.num_replicas.min(replicas).max(1));
            let diff = differences(&have, &want);
            if !diff.is_empty() {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!(
                        "stream {} was made with other settings: {}. Another --partitions or an older cxm made it; \
                         let its owners apply what it holds, then remove it (nats stream rm {}) and start again",
                        want.name,
                        diff.join("; "),
                        want.name
                    ),
                ));
            }
            Ok(have.num_replicas)
        }
        Err(_) => match js.create_stream(want.clone()).await {
            Ok(_) => {
                tracing::info!(stream = %want.name, replicas, "made ingest stream");
                Ok(replicas)
            }
            // a single server (no JetStream cluster) cannot keep more than one copy
            Err(e) if replicas > 1 && e.to_string().contains("replicas > 1 not supported") => {
                tracing::warn!(stream = %want.name, "the NATS server is not clustered: the stream keeps one copy, and ingest stops while that server is down");
                Box::pin(ensure_stream(js, k, cfg, 1)).await
            }
            Err(e) => Err(AppError::new(
                ErrorCode::LogUnavailable,
                format!(
                    "cannot make stream {} (is JetStream enabled on the servers?): {e}",
                    want.name
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_stream_subject() {
        for partitions in [1u32, 3, 4, 64] {
            let all: Vec<String> = (0..STREAMS.min(partitions))
                .flat_map(|k| subjects_of(k, partitions))
                .collect();
            assert_eq!(all.len(), partitions as usize);
            for p in 0..partitions as i32 {
                let s = subject(p, "t1");
                let filter = format!("cxm.ev.{p}.*");
                assert!(all.contains(&filter), "{s}");
                assert_eq!(stream_name(p), format!("CXM_EV_{}", p as u32 % STREAMS));
            }
        }
    }

    #[test]
    fn subjects_are_token_safe_and_ids_stable() {
        assert_eq!(subject(7, "a.b c*>"), "cxm.ev.7.a_b_c__");
        let a = message_id("t", "k", "m1");
        assert_eq!(a, message_id("t", "k", "m1"));
        assert_ne!(a, message_id("t", "k2", "m1"));
        // the parts are length-prefixed: moving a boundary is another id
        assert_ne!(message_id("ab", "c", "m"), message_id("a", "bc", "m"));
        assert_eq!(a.len(), 32);
    }
}
