//! Admission control: at most a set number of KPI and import calls run at once, and a call
//! beyond it is refused at once (RESOURCE_EXHAUSTED with a retry hint) rather than queued, so
//! overload shows as quick refusals, not as latency and memory growing without bound. Health
//! and reflection are never refused.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// The server-wide bound on calls in flight, shared by the services.
#[derive(Debug, Clone)]
pub struct Admission {
    calls: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    pub fn new(limit: usize) -> Admission {
        let limit = limit.max(1);
        Admission { calls: Arc::new(Semaphore::new(limit)), limit }
    }

    /// A place for one call, held until the call ends, or the refusal.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.calls).try_acquire_owned().map_err(|_| ApiError::Overloaded { limit: self.limit })
    }
}
