//! What every request handler shares ([`AppState`]): the rooms, settings,
//! the shutdown signal, authentication, metrics and the per-address
//! connection counts. Its own module so that the handlers and the wiring in
//! `lib.rs` depend on it, and it on nothing that depends on them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::auth::Auth;
use crate::config::Config;
use crate::connection::outbox::Outbox;
use crate::metrics::Metrics;

/// The rooms of this server, writing into connections' outboxes.
pub type Rooms = crate::room::Rooms<Outbox>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The rooms of this server.
    pub rooms: Arc<Rooms>,
    /// Settings.
    pub config: Arc<Config>,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every live connection; all dropped means all closed.
    pub connections: mpsc::Sender<()>,
    /// Token checks, when authentication is on.
    pub auth: Option<Arc<Auth>>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Open connections per client address.
    pub ip_conns: Arc<Mutex<HashMap<IpAddr, usize>>>,
}
