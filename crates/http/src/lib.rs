//! wirecap's HTTP edge: the manual's routes and the JSON API over the appliance, behind one
//! guard, on one listener (HTTP and/or HTTPS).
//!
//! ```text
//!   curl / scripts / UI ──HTTP(S)──► serve (listener, TLS) ──► router (the one route table)
//!                                                                  │
//!                       guard: limits, Basic auth or session + CSRF (csrf), the role (access),
//!                              access log, request metric
//!                                                                  │
//!        ┌──────────────┬─────────────┬──────────────┬─────────────┴──┬───────────────────┐
//!   routes/manual  routes/streams  routes/capture  routes/ops, admin,  routes/ui, session,
//!   (/sysmaster,   (/api/v1/       (capture,       update, meta        assets (the UI)
//!    /plain,/pcap)  streams…)       forward…)
//!        └──── shared: respond (responses, blocking), error (ApiError and the mapping of
//!              every domain error, formatted by family), body (JSON bodies), query,
//!              packets (which packets) ─► download (Range, formats, compression),
//!              state, openapi (generated from the handlers' attributes)
//!                                                                  │
//!                                                                  ▼
//!                         wirecap-appliance (engine, config, users, ops, report, update…)
//! ```
//!
//! What it owns: the route table ([`router()`]), the guard ([`guard`]), who may do what
//! ([`access`]: one rule for every route), the CSRF check of browser sessions ([`csrf`]),
//! the error answers and the one mapping of each domain error to a status ([`error`]),
//! response helpers ([`respond`]), query strings ([`query`]), which packets a download asks
//! for ([`packets`]), streaming downloads with Range and compression ([`download`]), JSON
//! bodies ([`body`]), the generated OpenAPI document ([`openapi`]), the handlers
//! one module per family ([`routes`]), the UI's embedded files (`ui/`, served by
//! [`routes::assets`]), TLS ([`tls`]), the listener ([`serve`]) and what a connection may cost ([`limits`]). The manual's text
//! formats are the appliance's ([`wirecap_appliance::manual`]): they are what the
//! appliance answers whatever carries them, the engine and the metrics build on them, and
//! they stay pure functions tested against the manual's examples.
//!
//! What it never does: decide anything the appliance decides (a handler parses the
//! request, calls `wirecap-appliance` or the store, and shapes the answer), register a
//! route anywhere but [`router()`], let a route module import another one, answer a
//! request without credentials (but the UI's login page, its code and the login itself),
//! or let a stream name from a URL reach the file system before the store validated it.
//!
//! Where things go: a new route is a handler in the `routes/` module of its family (a new
//! family is a new module there) with its `#[utoipa::path]` (method, path, parameters,
//! body, answers), and one `routes!` line in [`router::documented`]: that registers the
//! route and its entry in the OpenAPI document at once. A route that is not a plain read
//! or admin-only write is listed in [`access`]. A request body is a serde struct read
//! with [`body::Json`] (never parsed by hand); an error is an [`ApiError`] (its format is
//! the router's, by family: never chosen in a handler).
//!
//! A new API field: add it to the answer's type: in `wirecap_appliance::api` when the
//! system report shows it too (a stream, an interface, the status), else in the route
//! module that answers it; the OpenAPI document follows, and the in-process tests in
//! [`openapi`] check that the answer still fits its schema.
//!
//! A new ops feature lives in `wirecap-appliance`; only its routes come here.

pub mod access;
pub mod body;
pub mod csrf;
pub mod download;
pub mod error;
pub mod guard;
pub mod limits;
pub mod openapi;
pub mod packets;
pub mod query;
pub mod respond;
pub mod router;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tls;

pub use error::ApiError;
pub use router::{router, routes};
pub use serve::run;
pub use state::{AppState, Shared};
