//! openbatch: a self-hosted batch-computing service that speaks the Azure Batch data-plane
//! REST API. See the README for the architecture; in short:
//!
//! * [`api`] — HTTP: api-version, SharedKey auth, routing, handlers, Batch errors;
//! * [`model`] — the canonical resources (2022-10-01.16.0 shapes);
//! * [`versions`] — every api-version as data: operations, properties, renames, defaults;
//! * [`store`] — durable state (SQLite); [`storage`] — resource and output files in Blob Storage;
//! * [`scheduler`] — the pure scheduling core and its driver; [`autoscale`] — pool autoscale formulas;
//! * [`agent`] — the node agent and its protocol; [`nodes`] — where nodes come from;
//! * [`serve`] — wiring it all into the `openbatch serve` process.

pub mod agent;
pub mod api;
pub mod autoscale;
pub mod bench;
pub mod client;
pub mod model;
pub mod nodes;
pub mod odata;
pub mod scheduler;
pub mod serve;
pub mod storage;
pub mod store;
pub mod versions;
