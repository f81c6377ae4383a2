//! One change of a report's approval or of a period's lock, kept for the audit trail.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub unit_id: i32,
    pub period: String,
    /// `approved`, `unapproved`, `locked` or `unlocked`.
    pub action: String,
    pub actor: String,
    pub at: ChronoDateTimeUtc,
    pub comment: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
