//! `collab-testkit`: the one harness that the server tests, the editor tests
//! and the bench share, so that each thing they need exists once: a real
//! `collab-server` (a child process or in-process), a private `redis-server`
//! or Redis Cluster,
//! a raw WebSocket client, one bot on `collab_protocol::Replica` (and its
//! project form, one replica per open document), a TCP proxy
//! that can break connections, random edits and free ports. Everything is
//! real (real sockets, real processes) and stops itself when dropped; nothing
//! here ever talks to an address outside 127.0.0.1 or to Redis' port 6379.
//!
//! Dev-only: never published, never a dependency of a shipped crate.

pub mod bot;
pub mod client;
pub mod cluster;
pub mod edits;
pub mod ports;
pub mod procfs;
pub mod project;
pub mod proxy;
pub mod redis;
pub mod rest;
pub mod server;
pub mod tls;

pub use bot::{Bot, BotOptions};
pub use client::{Client, End, NO_INIT_IN_TIME, STEP};
pub use cluster::TestCluster;
pub use edits::random_edit;
pub use ports::free_port;
pub use project::{project_query, ProjectBot};
pub use proxy::Proxy;
pub use redis::TestRedis;
pub use rest::{parse_metric, Rest};
pub use server::{ServerCommand, TestServer};
pub use tls::TestCa;
