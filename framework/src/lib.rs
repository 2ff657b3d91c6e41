//! # occi-so-framework: the framework core
//!
//! What every service orchestrator instance lives in, whatever speaks to it
//! and whatever plugin serves it: the plugin [`registry`] (kinds,
//! locations, the MCN `orchestrator` alias), the attribute [`schema`]
//! checks, the per-instance [`lifecycle`] state machine that runs plugin
//! operations, the instance [`store`] with its journal, and the tenants'
//! user [`mixins`].
//!
//! **Invariant:** depends on no HTTP crate (no hyper, reqwest, http or
//! tower) and on no plugin; plugins are reached only through
//! `occi_so_sdk::Orchestrator`, backends only through
//! `occi_so_sdk::StackBackend`. Nothing here blocks the async runtime (the
//! journal writes on a thread of its own) or holds a lock across `.await`.

pub mod events;
pub mod lifecycle;
pub mod mixins;
pub mod operation;
pub mod outbox;
pub mod registry;
pub mod schema;
pub mod store;
