//! Text understanding and statistics for cxm. Pure functions: no I/O, no async, so the
//! same code scores live feedback, answers `cxm analyze`, and runs the evaluations.

pub mod abtest;
pub mod cluster;
pub mod clv;
pub mod cx_lexicon;
pub mod dist;
pub mod equity;
pub mod keyphrase;
pub mod metrics;
pub mod scores;
pub mod sentiment;
pub mod text;
pub mod themes;

pub use sentiment::{Analyzer, Cues, Sentiment};
