//! One imported file of a report: current, or superseded by a later one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "revisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub report_id: i32,
    pub number: i32,
    pub file_name: String,
    pub sha256: String,
    pub imported_at: ChronoDateTimeUtc,
    pub imported_by: String,
    pub prepared_by: Option<String>,
    pub prepared_on: Option<String>,
    /// JSON array of `{sheet, cell, code, message}`.
    pub warnings: String,
    /// `current` or `superseded`.
    pub status: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
