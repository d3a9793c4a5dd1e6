//! Scheduling: the pure [`core`] and the [`driver`] that connects it to the store, the node
//! agents and the node provider.

pub mod core;
pub mod deps;
pub mod driver;
pub mod hub;
