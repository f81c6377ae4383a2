//! Admission control: at most a set number of KPI and import calls run at once, and a call
//! beyond it is refused at once (RESOURCE_EXHAUSTED with a retry hint) rather than queued, so
//! overload shows as quick refusals, not as latency and memory growing without bound. Health
//! and reflection are never refused. Calls whose work grows with the tree (completeness, lists
//! over a subtree, exports, bulk queries, validation) also need one of a few heavy places, so
//! a flood of them queues in no pool and the light calls beside them stay fast. Optionally
//! each token also has its own bound, so one client cannot take every place. Uploads also count their bytes against a server-wide
//! bound ([`UploadBytes`]), so many slow uploads cannot hold unbounded memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Caller;
use crate::errors::ApiError;

/// What a call costs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A bounded number of rows, whatever the size of the tree (a KPI, a scorecard, a ranking).
    Light,
    /// Work that grows with the subtree or the request (completeness of a country, a
    /// thousand-unit QueryKpis, an export).
    Heavy,
}

/// The server-wide bounds on calls in flight (all calls, and heavy ones), and each token's,
/// shared by the services.
#[derive(Debug, Clone)]
pub struct Admission {
    calls: Arc<Semaphore>,
    limit: usize,
    heavy: Arc<Semaphore>,
    heavy_limit: usize,
    /// One bound per configured token (by [`Caller::token`]); empty when tokens are unbounded.
    per_token: Arc<Vec<Arc<Semaphore>>>,
    per_token_limit: usize,
}

/// The places a running call holds, released when it ends.
#[derive(Debug)]
pub struct Admitted {
    _server: OwnedSemaphorePermit,
    _heavy: Option<OwnedSemaphorePermit>,
    _token: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// At most `limit` calls at once, `heavy_limit` of them heavy, and `per_token_limit` per
    /// token of the `tokens` configured (0: no bound per token).
    pub fn new(limit: usize, heavy_limit: usize, per_token_limit: usize, tokens: usize) -> Admission {
        let limit = limit.max(1);
        let heavy_limit = heavy_limit.max(1);
        let per_token = match per_token_limit {
            0 => Vec::new(),
            bound => (0..tokens).map(|_| Arc::new(Semaphore::new(bound))).collect(),
        };
        Admission {
            calls: Arc::new(Semaphore::new(limit)),
            limit,
            heavy: Arc::new(Semaphore::new(heavy_limit)),
            heavy_limit,
            per_token: Arc::new(per_token),
            per_token_limit,
        }
    }

    /// A place for one call of `caller` costing `cost`, held until the call ends, or the
    /// refusal.
    pub fn admit(&self, caller: Option<Caller>, cost: Cost) -> Result<Admitted, ApiError> {
        let token = match caller.and_then(|caller| self.per_token.get(caller.token)) {
            Some(bound) => Some(
                Arc::clone(bound)
                    .try_acquire_owned()
                    .map_err(|_| ApiError::TokenBusy { limit: self.per_token_limit })?,
            ),
            None => None,
        };
        let server =
            Arc::clone(&self.calls).try_acquire_owned().map_err(|_| ApiError::Overloaded { limit: self.limit })?;
        let heavy = match cost {
            Cost::Light => None,
            Cost::Heavy => Some(
                Arc::clone(&self.heavy)
                    .try_acquire_owned()
                    .map_err(|_| ApiError::HeavyOverloaded { limit: self.heavy_limit })?,
            ),
        };
        Ok(Admitted { _server: server, _heavy: heavy, _token: token })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_has_its_own_bound_within_the_servers() {
        let admission = Admission::new(3, 3, 2, 2);
        let (first, second) = (Some(Caller { token: 0 }), Some(Caller { token: 1 }));
        let held = [admission.admit(first, Cost::Light), admission.admit(first, Cost::Light)];
        assert!(held.iter().all(Result::is_ok));
        assert!(
            matches!(admission.admit(first, Cost::Light), Err(ApiError::TokenBusy { limit: 2 })),
            "the token's third call"
        );
        let other = admission.admit(second, Cost::Light);
        assert!(other.is_ok(), "another token still gets a place");
        assert!(
            matches!(admission.admit(None, Cost::Light), Err(ApiError::Overloaded { limit: 3 })),
            "the server is full"
        );
        drop(held);
        assert!(admission.admit(first, Cost::Light).is_ok(), "places come back when calls end");
    }

    #[test]
    fn without_a_bound_per_token_only_the_servers_applies() {
        let admission = Admission::new(2, 2, 0, 1);
        let caller = Some(Caller { token: 0 });
        let held = [admission.admit(caller, Cost::Light), admission.admit(caller, Cost::Light)];
        assert!(held.iter().all(Result::is_ok));
        assert!(matches!(admission.admit(caller, Cost::Light), Err(ApiError::Overloaded { limit: 2 })));
    }

    #[test]
    fn heavy_calls_have_their_own_few_places_and_light_ones_still_pass() {
        let admission = Admission::new(10, 2, 0, 0);
        let heavy = [admission.admit(None, Cost::Heavy), admission.admit(None, Cost::Heavy)];
        assert!(heavy.iter().all(Result::is_ok));
        assert!(matches!(admission.admit(None, Cost::Heavy), Err(ApiError::HeavyOverloaded { limit: 2 })));
        assert!(admission.admit(None, Cost::Light).is_ok(), "a light call is not held back by heavy ones");
        drop(heavy);
        assert!(admission.admit(None, Cost::Heavy).is_ok());
    }
}
