//! The command connection, to one Redis or to a Redis Cluster. Both are
//! [`redis::aio::ConnectionLike`], so every script, pipeline and command in
//! this folder is written once: the cluster connection routes each by its
//! first key (every room key carries the room's hash tag, so a room's
//! scripts and pipelines stay on its slot), follows MOVED and ASK while a
//! slot migrates, and finds the promoted replica after a failover.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How long connecting and one request may take before they count as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Requests a single Redis's connection queues before writing them.
const PIPELINE_QUEUE: usize = 4096;

/// A command connection: cheap to clone, shared by every room.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// A connection to one Redis; it connects lazily and reconnects by
    /// itself, so the server starts while Redis is down.
    pub(super) fn single(client: redis::Client) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // Requests wait in this queue before the connection writes
            // them. With the default of 50, an instance taking over
            // thousands of users at once (a drained instance's) was seen
            // to stop writing for good: every request timed out while
            // Redis got none and the server sat idle (the reconnect_storm
            // bench scenario, 2 runs in 8). With room for a burst, 0 in 8.
            .set_pipeline_buffer_size(PIPELINE_QUEUE)
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        Ok(Self::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }
}

/// The command connection every request clones, replaced when it stops
/// answering.
///
/// After a primary was killed, the cluster connection of the redis crate
/// (1.8) was seen to time out every request, to every node, for good, even
/// once a replica had taken over: so on a cluster, a failed request replaces
/// the connection with a fresh one (which learns the cluster anew from the
/// seed nodes). A single Redis's connection was seen to stop writing once
/// (see [`PIPELINE_QUEUE`]) and does not reconnect on timeouts by itself:
/// a request that timed out replaces it. Either at most once per
/// [`REPLACE_EVERY`].
pub(super) struct SharedConn {
    current: Mutex<Conn>,
    client: Client,
    replaced: Mutex<Instant>,
}

/// What a fresh connection is made from (one per server, so its size does
/// not matter).
#[allow(clippy::large_enum_variant)]
enum Client {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// How often a failing connection may be replaced.
const REPLACE_EVERY: Duration = Duration::from_secs(2);

impl SharedConn {
    /// One Redis.
    pub(super) fn single(client: redis::Client) -> redis::RedisResult<Self> {
        Ok(Self {
            current: Mutex::new(Conn::single(client.clone())?),
            client: Client::Single(client),
            replaced: Mutex::new(Instant::now()),
        })
    }

    /// A cluster, from any of its nodes; it connects in the background
    /// (the first requests fail while no node answers).
    pub(super) fn cluster(seeds: &[&str]) -> redis::RedisResult<Self> {
        let client = cluster_builder(seeds).build()?;
        let conn = client.get_pending_async_connection_with_config(cluster_config());
        Ok(Self {
            current: Mutex::new(Conn::Cluster(conn)),
            client: Client::Cluster(client),
            replaced: Mutex::new(Instant::now()),
        })
    }

    /// The connection to send a request on.
    pub(super) fn get(&self) -> Conn {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A request failed (`timed_out`: it got no answer in time): replace
    /// the connection (on a single Redis only after a timeout) unless that
    /// was just done.
    pub(super) fn failed(&self, timed_out: bool) {
        if matches!(self.client, Client::Single(_)) && !timed_out {
            return;
        }
        let mut replaced = self.replaced.lock().unwrap_or_else(|e| e.into_inner());
        if replaced.elapsed() < REPLACE_EVERY {
            return;
        }
        let fresh = match &self.client {
            Client::Single(client) => match Conn::single(client.clone()) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a fresh redis connection");
                    return;
                }
            },
            Client::Cluster(client) => {
                Conn::Cluster(client.get_pending_async_connection_with_config(cluster_config()))
            }
        };
        *replaced = Instant::now();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        tracing::info!("a redis request failed: using a fresh connection");
    }
}

/// How long one request to a cluster may take in all, retries after MOVED,
/// ASK, TRYAGAIN or a lost node included: a failover takes a few seconds
/// (the cluster's node timeout, then the election).
const OVERALL_TIMEOUT: Duration = Duration::from_secs(8);

/// A cluster client's settings, with every timeout set: without an overall
/// one, a request queued while the client was rediscovering the cluster
/// could wait forever.
pub(super) fn cluster_builder(seeds: &[&str]) -> ClusterClientBuilder {
    ClusterClientBuilder::new(seeds.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(OVERALL_TIMEOUT))
}

/// The same timeouts for a connection made from the client (a connection's
/// config replaces the client's response timeout).
pub(super) fn cluster_config() -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
