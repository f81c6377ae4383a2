//! An indicator of a resolution.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "indicators")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub resolution_id: i32,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub kind: String,
    pub time_aggregation: String,
    pub direction: String,
    pub unit_of_measure: String,
    /// For percent indicators: the unit whose value its ancestors show.
    pub reporter_unit_id: Option<i32>,
    pub position: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
