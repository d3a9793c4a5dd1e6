//! The canonical model: Batch resources in the newest api-version's shape (2022-10-01.16.0).
//! Older api-versions are views of these types.

pub mod application;
pub mod autoscale;
pub mod certificate;
pub mod common;
pub mod dependencies;
pub mod exit;
pub mod job;
pub mod job_manager;
pub mod job_schedule;
pub mod multi_instance;
pub mod node;
pub mod node_ops;
pub mod pool;
pub mod stats;
pub mod task;
pub mod time;
pub mod usage;
