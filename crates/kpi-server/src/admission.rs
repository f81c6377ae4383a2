//! Admission control: at most a set number of KPI and import calls run at once, and a call
//! beyond it is refused at once (RESOURCE_EXHAUSTED with a retry hint) rather than queued, so
//! overload shows as quick refusals, not as latency and memory growing without bound. Health
//! and reflection are never refused. Uploads also count their bytes against a server-wide
//! bound ([`UploadBytes`]), so many slow uploads cannot hold unbounded memory.

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

/// The server-wide bound on upload bytes held in memory at once.
#[derive(Debug, Clone)]
pub struct UploadBytes {
    bytes: Arc<Semaphore>,
    limit: usize,
}

impl UploadBytes {
    pub fn new(limit: usize) -> UploadBytes {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        UploadBytes { bytes: Arc::new(Semaphore::new(limit)), limit }
    }

    /// Room for `bytes` more, held until the upload ends, or the refusal.
    pub fn reserve(&self, bytes: usize) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if bytes == 0 {
            return Ok(None);
        }
        let permits = u32::try_from(bytes).map_err(|_| ApiError::UploadsBusy { limit: self.limit })?;
        Arc::clone(&self.bytes)
            .try_acquire_many_owned(permits)
            .map(Some)
            .map_err(|_| ApiError::UploadsBusy { limit: self.limit })
    }
}
