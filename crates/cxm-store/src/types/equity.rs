//! The records the store keeps for equity.

/// An event carrying money: its customer, account and the amount its properties name
/// (`revenue`, `total`, `amount` or `value`, the first present), as text.
#[derive(Debug, Clone, PartialEq)]
pub struct AmountEvent {
    pub seq: i64,
    pub profile_id: Option<String>,
    pub group_id: Option<String>,
    pub ts_ms: i64,
    pub amount: Option<String>,
}
