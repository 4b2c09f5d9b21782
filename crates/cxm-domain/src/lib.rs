//! Pure types and rules of cxm. Nothing here does I/O or awaits: every function is a
//! deterministic function of its inputs, which is what makes `cxm rebuild` reproduce the
//! incremental projections exactly.

pub mod audit;
pub mod consent;
pub mod context;
pub mod decision;
pub mod event;
pub mod experiment;
pub mod feedback;
pub mod health;
pub mod identity;
pub mod journey;
pub mod journey_check;
pub mod journey_progress;
pub mod jps;
pub mod maturity;
pub mod quarantine;
pub mod survey;
pub mod taxonomy;
pub mod ticket;

pub use event::{
    normalize, Clock, EventType, IngestOptions, NormalizedEvent, QuarantineReason, MAX_EVENT_BYTES,
};
pub use identity::{Identifier, IdentifierKind, IdentityRules};
pub use quarantine::Quarantine;
pub use taxonomy::{Channel, EventCategory};
