//! Node providers: where compute nodes come from. The local provider starts node agents as
//! processes on this machine; a pool of a few nodes is ready in about a second.

pub mod local;
