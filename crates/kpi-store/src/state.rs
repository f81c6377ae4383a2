//! `store_state`: a few named values the store keeps about itself (whether the totals were
//! built, the catalog's version, fingerprint, text digest and reporting cycle).

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};

use crate::error::StoreError;

/// Set once the totals were built from the reports.
pub(crate) const TOTALS_BUILT: &str = "kpi_totals";
/// Set once `approval_counts` were built from the reports and approvals.
pub(crate) const APPROVAL_COUNTS_BUILT: &str = "approval_counts";
/// The catalog's reporting cycle (kpi-core's `ReportingCycle`, as JSON): data windows,
/// deadlines, holidays and closing, which have no table of their own.
pub(crate) const REPORTING_CYCLE: &str = "reporting_cycle";
/// The catalog's validation rules, bounds and outlier settings (JSON).
pub(crate) const QUALITY: &str = "quality";
/// Changes with every catalog load that changes something; snapshots compare it.
pub(crate) const CATALOG_VERSION: &str = "catalog_version";
/// What the last catalog load loaded, so loading the same catalog again costs one read.
pub(crate) const CATALOG_FINGERPRINT: &str = "catalog_fingerprint";
/// The digest of the catalog text the stored catalog was last loaded from, empty when it was
/// loaded from no text: the same text again is not even parsed.
pub(crate) const CATALOG_TEXT: &str = "catalog_text";

/// The value of one entry, if set.
pub(crate) async fn get(conn: &impl ConnectionTrait, name: &str) -> Result<Option<String>, StoreError> {
    let mut query = Query::select();
    query
        .expr(Expr::col(Alias::new("value")))
        .from(Alias::new("store_state"))
        .and_where(Expr::col(Alias::new("name")).eq(name));
    match conn.query_one(&query).await? {
        Some(row) => Ok(Some(row.try_get_by_index(0)?)),
        None => Ok(None),
    }
}

/// Sets one entry.
pub(crate) async fn set(conn: &impl ConnectionTrait, name: &str, value: &str) -> Result<(), StoreError> {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("store_state"))
        .columns([Alias::new("name"), Alias::new("value")])
        .values_panic([name.into(), value.into()])
        .on_conflict(OnConflict::column(Alias::new("name")).update_column(Alias::new("value")).to_owned());
    conn.execute(&insert).await?;
    Ok(())
}
