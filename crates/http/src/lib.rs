//! The wirecap appliance server: one process that runs the capture engine and serves it
//! over HTTP(S).
//!
//! ```text
//!   curl / scripts / UI ──HTTP(S)──► guard (limits, Basic auth + per-IP backoff, role (access), access log, metrics)
//!                                        │
//!        ┌───────────────────────────────┼─────────────────────────────┐
//!   /sysmaster/* ──► engine        /plain/* ──► appliance (pure text)   /pcap/*, /api/v1/*/pcap ──► download
//!   (capture start/stop, counters)  /api/v1/* ──► JSON                  (store ─► filter ─► pcap/pcapng ─► gzip/zstd)
//! ```
//!
//! What it owns: the manual's routes, byte for byte ([`appliance`] holds the formats as pure
//! functions, tested against the manual's examples), the JSON API and its OpenAPI document
//! ([`openapi`]), users and authentication ([`auth`]), TLS ([`tls`]), configuration
//! ([`config`]), metrics ([`metrics`]), streaming downloads with Range and compression
//! ([`download`]), the capture engine's lifecycle ([`engine`]), who may do what
//! ([`access`]: one rule for every route), the appliance's own administration (users in
//! [`auth`], [`hostname`], system [`report`]s, their routes in [`api_admin`]), the inline
//! forwarder's API shape ([`forward`]), and the browser UI: its
//! embedded files ([`ui`]), session login with CSRF tokens ([`session`]) and the paged,
//! compact JSON it reads ([`api_ui`]); software update: release archives ([`release`]),
//! installing, restarting into and rolling back releases ([`update`]).
//!
//! What it never does: parse packets (filters are `wirecap-filter`'s), touch the store's
//! files other than through `wirecap-store`, answer a request without credentials (but
//! the UI's login page, its code and the login itself), or
//! let a stream name from a URL reach the file system before the store validated it.

pub mod access;
pub mod api_admin;
pub mod api_ops;
pub mod api_ui;
pub mod app;
pub mod appliance;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod download;
pub mod engine;
pub mod error;
pub mod forward;
pub mod hostname;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod query;
pub mod release;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod session;
pub mod tls;
pub mod ui;
pub mod update;

pub use config::{ServeArgs, SourceChoice};
pub use error::{ApiError, Error};
pub use server::run;
