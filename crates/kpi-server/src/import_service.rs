//! `kpi.v1.ImportService`: uploading one workbook, imported by the importer's own pipeline
//! (`kpi_importer::import_file`), never a second implementation.

use kpi_importer::{FileReport, ImportOptions, Issue, SheetReader};
use kpi_proto::v1;
use kpi_proto::v1::import_service_server::ImportService;
use kpi_store::Store;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::admission::{Admission, Cost, UploadBytes};
use crate::auth::Caller;
use crate::convert;
use crate::errors::ApiError;
use crate::telemetry::{observe, record_request};

/// The upload service.
#[derive(Debug, Clone)]
pub struct ImportApi {
    store: Store,
    /// The parse workers: an upload's bytes are read there, never in the server's process.
    reader: SheetReader,
    max_upload_bytes: usize,
    admission: Admission,
    upload_bytes: UploadBytes,
}

impl ImportApi {
    pub fn new(
        store: Store,
        reader: SheetReader,
        max_upload_bytes: usize,
        admission: Admission,
        upload_bytes: UploadBytes,
    ) -> Self {
        ImportApi { store, reader, max_upload_bytes, admission, upload_bytes }
    }

    async fn import(
        &self,
        options: ImportOptions,
        mut chunks: Streaming<v1::ImportChunk>,
    ) -> Result<v1::ImportResult, ApiError> {
        let mut file_name = String::new();
        let mut data = Vec::new();
        let mut options = options;
        let mut first = true;
        // The bytes this upload holds, counted against the server's bound until it ends.
        let mut in_flight = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|status| match status.code() {
                // One message over the decoding limit: the same refusal as any oversized upload.
                tonic::Code::OutOfRange => ApiError::UploadTooLarge { limit: self.max_upload_bytes },
                _ => ApiError::invalid("data", format!("the upload stream broke: {}", status.message())),
            })?;
            if first {
                first = false;
                file_name = chunk.file_name;
                options.dry_run = chunk.dry_run;
                if !chunk.unit_code.is_empty() {
                    options.unit = Some(convert::unit_code("unit_code", &chunk.unit_code)?);
                }
                if !chunk.period.is_empty() {
                    options.period = Some(convert::period("period", &chunk.period)?);
                }
                record_request(&chunk.unit_code, &chunk.period);
            }
            if data.len().saturating_add(chunk.data.len()) > self.max_upload_bytes {
                return Err(ApiError::UploadTooLarge { limit: self.max_upload_bytes });
            }
            in_flight.push(self.upload_bytes.reserve(chunk.data.len())?);
            data.extend_from_slice(&chunk.data);
        }
        if first {
            return Err(ApiError::invalid("data", "the upload had no chunks"));
        }
        // The name is the client's: no path, no control characters, 255 characters at most,
        // in storage, messages and logs alike.
        let file_name = kpi_importer::stored_file_name(&file_name);
        if file_name.trim().is_empty() {
            return Err(ApiError::invalid("file_name", "the first chunk must name the file"));
        }
        // The catalog the store holds now, as queries see it (another replica may have loaded
        // an edited one since this server started).
        let catalog = self.store.snapshot().await?.catalog()?;
        let report = kpi_importer::import_file(&self.store, &self.reader, &catalog, &file_name, data, &options).await?;
        drop(in_flight);
        tracing::info!(file = %report.path, status = report.status.as_str(), "workbook uploaded");
        Ok(import_result(report))
    }
}

fn import_result(report: FileReport) -> v1::ImportResult {
    let issues = |issues: &[Issue]| {
        issues
            .iter()
            .map(|i| v1::Issue {
                sheet: i.sheet.clone(),
                cell: i.cell.clone(),
                code: i.code.to_owned(),
                message: i.message.clone(),
            })
            .collect()
    };
    v1::ImportResult {
        status: report.status.as_str().to_owned(),
        unit: report.unit.clone().unwrap_or_default(),
        period: report.period.clone().unwrap_or_default(),
        revision: report.revision.unwrap_or_default(),
        sha256: report.sha256.clone(),
        errors: issues(&report.errors),
        warnings: issues(&report.warnings),
        path: report.path,
    }
}

#[tonic::async_trait]
impl ImportService for ImportApi {
    async fn import_workbook(
        &self,
        request: Request<Streaming<v1::ImportChunk>>,
    ) -> Result<Response<v1::ImportResult>, Status> {
        let caller = Caller::of(&request);
        let metadata = request.metadata();
        let options = ImportOptions {
            imported_by: convert::actor(metadata),
            lang: convert::lang(metadata),
            ..ImportOptions::default()
        };
        observe(&self.admission, caller, Cost::Light, self.import(options, request.into_inner())).await
    }
}
