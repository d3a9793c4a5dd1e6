//! Scheduling: the pure [`reactor`] (every Batch rule; the placement [`core`] inside it)
//! and the [`driver`] that connects it to the store, the node agents and the node provider.

pub mod clock;
pub mod core;
pub mod deps;
pub mod driver;
pub mod hub;
pub mod reactor;
