//! `kpi.v1.DataQualityService`: re-validating stored reports and following up their issues.
//! The checks are the import pipeline's own (`kpi_importer::checks`), so a re-validation finds
//! what an import of the same figures would.

use kpi_proto::v1;
use kpi_proto::v1::data_quality_service_server::DataQualityService;
use kpi_store::Store;
use tonic::{Request, Response, Status};

use crate::admission::{Admission, Cost};
use crate::auth::Caller;
use crate::convert;
use crate::errors::ApiError;
use crate::telemetry::{observe, record_request};

/// The data quality service over a store.
#[derive(Debug, Clone)]
pub struct DataQualityApi {
    store: Store,
    admission: Admission,
}

impl DataQualityApi {
    pub fn new(store: Store, admission: Admission) -> Self {
        DataQualityApi { store, admission }
    }

    async fn run_validation(
        &self,
        request: v1::RunValidationRequest,
        lang: kpi_importer::Lang,
    ) -> Result<v1::RunValidationResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
        let done = kpi_importer::checks::revalidate(&self.store, &parent.definition.code, period, lang).await?;
        let issues = self.store.list_data_issues(&parent.definition.code, period, None).await?;
        Ok(v1::RunValidationResponse {
            reports_checked: i32::try_from(done.reports).unwrap_or(i32::MAX),
            issues_found: i32::try_from(done.issues).unwrap_or(i32::MAX),
            issues: issues.iter().map(convert::data_issue).collect(),
        })
    }

    async fn settle(
        &self,
        request: v1::SettleDataIssueRequest,
        actor: String,
        resolve: bool,
    ) -> Result<v1::DataIssue, ApiError> {
        let comment = convert::comment("comment", &request.comment, true)?;
        let issue = self.store.settle_data_issue(request.id, &actor, &comment, resolve).await?;
        Ok(convert::data_issue(&issue))
    }
}

#[tonic::async_trait]
impl DataQualityService for DataQualityApi {
    async fn run_validation(
        &self,
        request: Request<v1::RunValidationRequest>,
    ) -> Result<Response<v1::RunValidationResponse>, Status> {
        let caller = Caller::of(&request);
        let lang = convert::lang(request.metadata());
        let request = request.into_inner();
        record_request(&request.parent_code, &request.period);
        observe(&self.admission, caller, Cost::Heavy, self.run_validation(request, lang)).await
    }

    async fn follow_up_data_issue(
        &self,
        request: Request<v1::SettleDataIssueRequest>,
    ) -> Result<Response<v1::DataIssue>, Status> {
        let caller = Caller::of(&request);
        let actor = convert::actor(request.metadata());
        observe(&self.admission, caller, Cost::Light, self.settle(request.into_inner(), actor, false)).await
    }

    async fn resolve_data_issue(
        &self,
        request: Request<v1::SettleDataIssueRequest>,
    ) -> Result<Response<v1::DataIssue>, Status> {
        let caller = Caller::of(&request);
        let actor = convert::actor(request.metadata());
        observe(&self.admission, caller, Cost::Light, self.settle(request.into_inner(), actor, true)).await
    }
}
