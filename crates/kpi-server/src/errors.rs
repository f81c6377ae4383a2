//! The one place that turns failures into gRPC statuses.
//!
//! Handlers return [`ApiError`]; callers see INVALID_ARGUMENT with `google.rpc.BadRequest`
//! field violations for malformed input, NOT_FOUND for unknown codes, FAILED_PRECONDITION for an
//! approval change the report's state does not allow, RESOURCE_EXHAUSTED for
//! oversized uploads and for calls beyond the server's or the token's limit (with a retry hint), UNAVAILABLE while the database is down or no parse worker can start, and
//! an opaque INTERNAL for
//! everything else, whose details go to the log only.

use kpi_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A request that is not a valid protobuf message is the client's error: tonic answers it as
/// INTERNAL with the decoder's details; this makes it INVALID_ARGUMENT without them. Applied
/// to every response (a tower layer in `startup`), it leaves all others untouched.
pub fn refuse_undecodable(
    mut response: tonic::codegen::http::Response<tonic::body::Body>,
) -> tonic::codegen::http::Response<tonic::body::Body> {
    use tonic::codegen::http::HeaderValue;
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|status| status == "13");
    let undecodable = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| message.starts_with("failed%20to%20decode"));
    if internal && undecodable {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert("grpc-message", HeaderValue::from_static("the%20request%20is%20not%20a%20valid%20message"));
    }
    response
}

/// When a refused call may try again (`google.rpc.RetryInfo`).
const RETRY_AFTER_OVERLOAD: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid {field}: {description}")]
    InvalidArgument { field: &'static str, description: String },
    #[error("{kind} {code} not found")]
    NotFound { kind: &'static str, code: String },
    #[error("upload larger than the limit of {limit} bytes")]
    UploadTooLarge { limit: usize },
    /// The server holds its limit of upload bytes at once.
    #[error("the server is receiving its limit of {limit} upload bytes at once")]
    UploadsBusy { limit: usize },
    /// The server is running its limit of calls at once.
    #[error("the server is at its limit of {limit} calls at once")]
    Overloaded { limit: usize },
    /// The server is running its limit of heavy calls at once.
    #[error(
        "the server is at its limit of {limit} heavy calls at once (completeness, overdue, data issues, \
         exports, QueryKpis, validation)"
    )]
    HeavyOverloaded { limit: usize },
    /// The calling token is running its own limit of calls at once.
    #[error("this token is at its limit of {limit} calls at once")]
    TokenBusy { limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The review workbook could not be written: our bug, never the caller's.
    #[error("cannot write the review workbook: {0}")]
    Workbook(String),
    /// No parse worker could be started: the server's trouble, not the file's.
    #[error(transparent)]
    Reader(#[from] kpi_importer::WorkerError),
}

impl From<kpi_importer::ImportError> for ApiError {
    fn from(error: kpi_importer::ImportError) -> Self {
        match error {
            kpi_importer::ImportError::Store(error) => ApiError::Store(error),
            kpi_importer::ImportError::Reader(error) => ApiError::Reader(error),
        }
    }
}

impl From<kpi_report::ReportError> for ApiError {
    fn from(error: kpi_report::ReportError) -> Self {
        match error {
            kpi_report::ReportError::Store(error) => ApiError::Store(error),
            kpi_report::ReportError::Workbook(error) => ApiError::Workbook(error.to_string()),
        }
    }
}

impl ApiError {
    pub fn invalid(field: &'static str, description: impl std::fmt::Display) -> Self {
        ApiError::InvalidArgument { field, description: description.to_string() }
    }

    pub fn not_found(kind: &'static str, code: impl std::fmt::Display) -> Self {
        ApiError::NotFound { kind, code: code.to_string() }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match error {
            ApiError::InvalidArgument { field, description } => Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid {field}: {description}"),
                ErrorDetails::with_bad_request_violation(field, description),
            ),
            ApiError::NotFound { kind, code } => Status::not_found(format!("{kind} {code} not found")),
            ApiError::UploadTooLarge { limit } => {
                Status::resource_exhausted(format!("the workbook is larger than the limit of {limit} bytes"))
            }
            busy @ (ApiError::UploadsBusy { .. }
            | ApiError::Overloaded { .. }
            | ApiError::HeavyOverloaded { .. }
            | ApiError::TokenBusy { .. }) => Status::with_error_details(
                Code::ResourceExhausted,
                format!("{busy}; retry shortly"),
                ErrorDetails::with_retry_info(Some(RETRY_AFTER_OVERLOAD)),
            ),
            ApiError::Store(StoreError::Unknown { kind, code }) => {
                Status::not_found(format!("{kind} {code} not found"))
            }
            ApiError::Store(StoreError::Precondition(message)) => Status::failed_precondition(message),
            ApiError::Store(StoreError::Unavailable(source)) => {
                tracing::warn!(error = %source, "database unavailable");
                Status::unavailable("the database is unavailable; retry later")
            }
            ApiError::Workbook(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
            ApiError::Store(other) => {
                tracing::error!(error = ?other, "internal error");
                Status::internal("internal error")
            }
            ApiError::Reader(error) => {
                tracing::error!(%error, "no parse worker could read the upload");
                Status::unavailable("the workbook reader is unavailable; retry later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_a_field_violation() {
        let status = Status::from(ApiError::invalid("period", "\"2023X\" is not a period"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "period");
    }

    #[test]
    fn internal_errors_are_opaque() {
        let status = Status::from(ApiError::Store(StoreError::Corrupt("secret detail".into())));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}
