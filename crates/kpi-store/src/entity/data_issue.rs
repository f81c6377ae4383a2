//! A rule violation or an outlier found in a stored report, and its follow-up.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_issues")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub unit_id: i32,
    pub period: String,
    /// `rule` or `outlier`.
    pub kind: String,
    /// The rule's code, or `outlier`.
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    pub indicator: String,
    pub sheet: String,
    pub cell: String,
    pub message: String,
    /// `open`, `follow_up` or `resolved`.
    pub status: String,
    pub found_at: ChronoDateTimeUtc,
    pub follow_up_by: Option<String>,
    pub follow_up_at: Option<ChronoDateTimeUtc>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<ChronoDateTimeUtc>,
    pub resolution: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
