//! Why the domain refuses an action. It knows no HTTP: the API edge maps each kind to a
//! problem+json status once (`api::problem`).

/// An action the ticket's rules do not allow, with a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Values that are not acceptable, each naming its field (422).
    #[error("invalid request")]
    Invalid(Vec<(String, String)>),
    /// The caller may not do this to this ticket: role, region, holder or sender (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such ticket, or none the caller may know of (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The ticket's state does not allow it (409).
    #[error("state conflict: {0}")]
    State(String),
    /// The stored ticket cannot be read; a defect or corruption, not the caller's mistake (500).
    #[error("internal: {0}")]
    Internal(String),
}

impl Refusal {
    /// A single invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Refusal {
        Refusal::Invalid(vec![(field.to_string(), message.into())])
    }
}
