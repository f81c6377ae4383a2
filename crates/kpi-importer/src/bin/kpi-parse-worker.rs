//! `kpi-parse-worker`: a parse worker and nothing else (see `kpi_importer::isolation`). The
//! library's tests start it; `kpi-import` and `kpi-server` serve as their own workers.

use std::process::ExitCode;

fn main() -> ExitCode {
    kpi_importer::isolation::serve_if_worker().unwrap_or_else(|| {
        eprintln!("kpi-parse-worker: start it as `kpi-parse-worker {}`", kpi_importer::isolation::WORKER_ARG);
        ExitCode::from(2)
    })
}
