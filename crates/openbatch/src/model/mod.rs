//! The canonical model: Batch resources in the newest api-version's shape (2022-10-01.16.0).
//! Older api-versions are views of these types.

pub mod application;
pub mod common;
pub mod job;
pub mod node;
pub mod pool;
pub mod task;
pub mod time;
