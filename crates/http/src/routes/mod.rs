//! The handlers, one module per family of routes. They are registered in
//! [`crate::router()`] only; a route module imports the shared helpers (`respond`, `error`,
//! `query`, `download`, `state`, `csrf`) and the appliance, never another route module.

pub mod admin;
pub mod alerts;
pub mod assets;
pub mod capture;
pub mod flows;
pub mod manual;
pub mod meta;
pub mod ops;
pub mod search;
pub mod session;
pub mod streams;
pub mod tokens;
pub mod ui;
pub mod update;
