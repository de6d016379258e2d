//! The wirecap appliance: everything the server does that is not HTTP.
//!
//! ```text
//!   wirecap-http (routes, guard, serve)       wirecap CLI (users, ops, hostname, report, update…)
//!            │                                  │
//!            ▼                                  ▼
//!   ┌─────────────────────────── wirecap-appliance ───────────────────────────┐
//!   │ engine ─► catalog, manual        operations ─► retention, scheduler     │
//!   │ auth ◄─► session                 scheduler ─► schedule, engine          │
//!   │ report ─► api,  auth, hostname   update ─► release                      │
//!   │ metrics ─► manual, retention     config ─► hostname   (all ─► os)       │
//!   └─────────────────────────────────────┬───────────────────────────────────┘
//!                                         ▼
//!        wirecap-capture, wirecap-store, wirecap-query, wirecap-forward, wirecap-pcap
//! ```
//!
//! What it owns: the capture engine's lifecycle ([`engine`]), the stream catalog
//! ([`catalog`]), configuration: `wirecap.toml` and the resolved [`config::Settings`]
//! ([`config`]); atomic file writes, the cross-process file lock, capabilities and disk
//! space ([`os`]); schedules and retention ([`operations`], [`schedule`], [`scheduler`],
//! [`retention`]); alerts to a webhook and syslog ([`alerts`]); users, password hashing, login backoff
//! ([`auth`]), API tokens ([`tokens`]) and browser sessions with their CSRF tokens ([`session`]); the appliance's
//! name ([`hostname`]); system reports ([`report`]); release archives ([`release`]) and
//! installing, restarting into and rolling back releases ([`update`]); the metrics
//! registry and its counters ([`metrics`]); the manual's text and JSON formats as pure
//! functions ([`manual`]: they are the appliance's answers, whoever carries them); the
//! types of the API that the system report shares ([`api`], [`forward`]).
//!
//! What it never does: speak HTTP (no axum, hyper, tower or `http` types: a failure is a
//! typed error here, and `wirecap-http` maps each error type to a status in one place),
//! parse packets (filters are `wirecap-filter`'s, through `wirecap-query`), or touch the
//! store's files other than through `wirecap-store`.
//!
//! Where things go: a new operations feature (something the appliance does on a schedule
//! or on request, e.g. a new retention rule) is a module here, configured in
//! [`config::FileConfig`] and started by [`operations::Operations`]; its routes are then one
//! module in `wirecap-http`'s `routes/` and its CLI a `*_cmd.rs` in `wirecap`. A new field
//! of an API answer the report also shows goes in its type in [`api`] (the OpenAPI document
//! follows); a field only the API shows goes
//! in the route module that builds that answer. A new route never comes here.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod capture_settings;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod forward;
pub mod hostname;
pub mod manual;
pub mod metrics;
pub mod operations;
pub mod os;
pub mod password;
pub mod release;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod session;
pub mod tokens;
pub mod update;

use std::borrow::Cow;

pub use config::{ServeArgs, SourceChoice};
pub use error::Error;

/// At most 64 characters of user text, for error messages and logs.
pub fn short(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= 64 {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().take(64).chain("…".chars()).collect())
    }
}
