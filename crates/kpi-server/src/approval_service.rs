//! `kpi.v1.ApprovalService`: approving reports and locking periods. Each handler parses its
//! request, lets the store make the change in one transaction with its audit entry, and
//! answers the report's new status.

use kpi_proto::v1;
use kpi_proto::v1::approval_service_server::ApprovalService;
use kpi_store::{ApprovalStatus, Store};
use tonic::{Request, Response, Status};

use crate::admission::{Admission, Cost};
use crate::auth::Caller;
use crate::convert;
use crate::errors::ApiError;
use crate::telemetry::{observe, record_request};

/// The approval service over a store.
#[derive(Debug, Clone)]
pub struct ApprovalApi {
    store: Store,
    admission: Admission,
}

/// Which change a call asks for.
#[derive(Debug, Clone, Copy)]
enum Change {
    Approve,
    Unapprove,
    Lock,
    Unlock,
}

impl ApprovalApi {
    pub fn new(store: Store, admission: Admission) -> Self {
        ApprovalApi { store, admission }
    }

    /// Parses the unit, period and comment of a change, makes it as `actor`, and answers the
    /// report's status. Unapproving and unlocking need a reason.
    async fn change(
        &self,
        change: Change,
        actor: String,
        unit_code: &str,
        period: &str,
        comment: &str,
    ) -> Result<v1::ApprovalStatus, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", period)?;
        let unit = convert::known_unit(&snapshot, "unit_code", unit_code)?;
        let code = &unit.definition.code;
        let status: ApprovalStatus = match change {
            Change::Approve => {
                let comment = convert::comment("comment", comment, false)?;
                self.store.approve_report(code, period, &actor, &comment).await?
            }
            Change::Unapprove => {
                let reason = convert::comment("reason", comment, true)?;
                self.store.unapprove_report(code, period, &actor, &reason).await?
            }
            Change::Lock => {
                let comment = convert::comment("comment", comment, false)?;
                self.store.lock_period(code, period, &actor, &comment).await?
            }
            Change::Unlock => {
                let reason = convert::comment("reason", comment, true)?;
                self.store.unlock_period(code, period, &actor, &reason).await?
            }
        };
        tracing::info!(unit = %code, %period, %actor, change = ?change, "approval changed");
        Ok(convert::approval_status(&status))
    }

    async fn serve<B: Sync>(
        &self,
        change: Change,
        request: &Request<B>,
        unit_code: &str,
        period: &str,
        comment: &str,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        record_request(unit_code, period);
        let actor = convert::actor(request.metadata());
        observe(
            &self.admission,
            Caller::of(request),
            Cost::Light,
            self.change(change, actor, unit_code, period, comment),
        )
        .await
    }
}

#[tonic::async_trait]
impl ApprovalService for ApprovalApi {
    async fn approve_report(
        &self,
        request: Request<v1::ApproveReportRequest>,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        let body = request.get_ref();
        self.serve(Change::Approve, &request, &body.unit_code, &body.period, &body.comment).await
    }

    async fn unapprove_report(
        &self,
        request: Request<v1::UnapproveReportRequest>,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        let body = request.get_ref();
        self.serve(Change::Unapprove, &request, &body.unit_code, &body.period, &body.reason).await
    }

    async fn lock_period(
        &self,
        request: Request<v1::LockPeriodRequest>,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        let body = request.get_ref();
        self.serve(Change::Lock, &request, &body.unit_code, &body.period, &body.comment).await
    }

    async fn unlock_period(
        &self,
        request: Request<v1::UnlockPeriodRequest>,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        let body = request.get_ref();
        self.serve(Change::Unlock, &request, &body.unit_code, &body.period, &body.reason).await
    }
}
