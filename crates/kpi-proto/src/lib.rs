//! The gRPC contract of the KPI tracker (package `kpi.v1`), generated from proto/kpi/v1 at
//! build time, and its encoded descriptor set for server reflection.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic, clippy::unwrap_used, clippy::expect_used)]

/// Messages and services of `kpi.v1`.
pub mod v1 {
    tonic::include_proto!("kpi.v1");
}

/// The encoded `FileDescriptorSet` of `kpi.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kpi_v1_descriptor.bin"));
