//! The state every handler gets: the appliance's parts (engine, users and sessions,
//! settings, operations, reports) and the edge's own (download slots). Build one and hand
//! it to [`crate::router()`] to get the whole application, with or without a listener.

use std::sync::Arc;

use wirecap_appliance::auth::Authenticator;
use wirecap_appliance::config::Settings;
use wirecap_appliance::engine::Engine;
use wirecap_appliance::metrics::Metrics;
use wirecap_appliance::operations::Operations;
use wirecap_appliance::report::Jobs;

use crate::download::Slots;

/// Everything a handler may need.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub slots: Slots,
    pub settings: Settings,
    /// Schedules and retention.
    pub ops: Arc<Operations>,
    /// The appliance's name now (`hostname` in wirecap.toml, else the OS's).
    pub hostname: std::sync::RwLock<String>,
    /// System reports being made in the background.
    pub reports: Jobs,
}

impl AppState {
    pub fn hostname(&self) -> String {
        self.hostname
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_hostname(&self, name: &str) {
        *self.hostname.write().unwrap_or_else(|e| e.into_inner()) = name.to_owned();
    }
}

pub type Shared = Arc<AppState>;
