//! The maintained totals of one unit's subtree for one indicator and period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "kpi_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub unit_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub count: i64,
    pub numerator: i64,
    pub denominator: i64,
    pub percent: Option<f64>,
    pub reporting_units: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
