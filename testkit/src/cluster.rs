//! A private Redis Cluster: `primaries` primaries and `replicas` replicas
//! of each, every node a `redis-server --cluster-enabled yes` on a free port
//! (never 6379) in a directory of its own, keeping nothing on disk, joined by
//! `redis-cli --cluster create`. The cluster tests move a slot between
//! primaries and kill a primary so that its replica takes over; the bench
//! and the demo only start one. Synchronous like [`crate::TestRedis`].
//! Every node is killed and the directory removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::ports::free_port;

/// How long nodes may take to start, and the cluster to agree.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replica may take to replace a killed primary.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// A node that does not answer for this long counts as failed (low, so a
/// failover takes about two seconds, not fifteen).
const NODE_TIMEOUT_MS: u64 = 1000;

struct Node {
    port: u16,
    /// Its cluster bus port.
    bus: u16,
    child: Option<Child>,
}

/// A private Redis Cluster, stopped on drop.
pub struct TestCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl TestCluster {
    /// Starts one; panics if it cannot.
    pub fn start(primaries: usize, replicas: usize) -> Self {
        Self::try_start(primaries, replicas).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts `primaries` primaries (3 at least: `redis-cli` wants them)
    /// with `replicas` replicas each, or says why it could not.
    pub fn try_start(primaries: usize, replicas: usize) -> Result<Self> {
        ensure!(primaries >= 3, "a Redis Cluster needs 3 primaries at least");
        let first = free_port();
        let dir = std::env::temp_dir().join(format!(
            "collab-test-cluster-{}-{first}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for i in 0..primaries * (1 + replicas) {
            let port = if i == 0 { first } else { free_port() };
            let bus = free_port();
            let child = cluster.spawn(port, bus)?;
            cluster.nodes.push(Node {
                port,
                bus,
                child: Some(child),
            });
        }
        for n in &cluster.nodes {
            wait_ping(n.port)?;
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("cannot run redis-cli (is it installed? .ci/run installs redis-tools)")?;
        ensure!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_ok(START_TIMEOUT)?;
        cluster.wait_replicas_synced(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Waits until every running replica's link to its primary is up (a
    /// fresh replica first copies its primary: until then a `WAIT` for it
    /// times out).
    fn wait_replicas_synced(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let synced = self.running().all(|p| {
                conn(p)
                    .and_then(|mut c| {
                        Ok(redis::cmd("INFO")
                            .arg("replication")
                            .query::<String>(&mut c)?)
                    })
                    .is_ok_and(|info| {
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
            });
            if synced {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the replicas did not finish copying their primaries");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a node killed by [`Self::kill_primary`] again: it rejoins the
    /// cluster (its `nodes.conf` remembers it) as a replica of the primary
    /// that replaced it.
    pub fn restart(&mut self, port: u16) -> Result<()> {
        let bus = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .context("not ours")?
            .bus;
        let child = self.spawn(port, bus)?;
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.child = Some(child);
        }
        wait_ping(port)?;
        self.wait_ok(START_TIMEOUT)?;
        self.wait_replicas_synced(START_TIMEOUT)
    }

    /// Starts one node; its cluster bus on `bus` (not the default port +
    /// 10000, which may be taken or out of range).
    fn spawn(&self, port: u16, bus: u16) -> Result<Child> {
        let node_dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir)?;
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-port", &bus.to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server (is it installed? .ci/run installs it)")
    }

    /// Seed URLs of every node that runs, comma-separated (what
    /// `--redis-url` takes with `--redis-cluster`).
    pub fn url(&self) -> String {
        self.running()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn running(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
    }

    /// The hash slot of a key (as `CLUSTER KEYSLOT` computes it).
    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.running().next().expect("a node runs");
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn(port).expect("a node answers"))
            .expect("CLUSTER KEYSLOT")
    }

    /// Node id, port, primary or not, and the slots it serves (first,
    /// last) of every node that runs, from `CLUSTER NODES` as a live node
    /// sees it.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        let port = self.running().next().expect("a node runs");
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut conn(port).expect("a node answers"))
            .expect("CLUSTER NODES");
        parse_nodes(&text)
            .into_iter()
            .filter(|n| !n.failed)
            .collect()
    }

    /// The primary that serves `slot`.
    pub fn owner(&self, slot: u16) -> ClusterNode {
        self.nodes()
            .into_iter()
            .find(|n| n.primary && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// Moves `slot` (with its keys) to the primary on port `to`, as
    /// `redis-cli --cluster reshard` moves each slot: importing and
    /// migrating marks, `MIGRATE` of its keys in batches, then the new
    /// owner announced to every primary. Clients meanwhile get ASK (or
    /// TRYAGAIN), then MOVED.
    pub fn move_slot(&self, slot: u16, to: u16) -> Result<()> {
        let from = self.owner(slot);
        let nodes = self.nodes();
        let target = nodes
            .iter()
            .find(|n| n.port == to && n.primary)
            .context("the target is not a primary")?;
        ensure!(from.port != to, "slot {slot} is already on port {to}");
        let mut src = conn(from.port)?;
        let mut dst = conn(to)?;
        let setslot = |c: &mut redis::Connection, how: &str, id: &str| -> Result<()> {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(id)
                .query::<()>(c)
                .with_context(|| format!("CLUSTER SETSLOT {slot} {how}"))
        };
        setslot(&mut dst, "IMPORTING", &from.id)?;
        setslot(&mut src, "MIGRATING", &target.id)?;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut src)?;
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut src)
                .context("MIGRATE")?;
        }
        setslot(&mut dst, "NODE", &target.id)?;
        setslot(&mut src, "NODE", &target.id)?;
        for n in nodes.iter().filter(|n| n.primary) {
            if n.port != to && n.port != from.port {
                setslot(&mut conn(n.port)?, "NODE", &target.id)?;
            }
        }
        self.wait_ok(START_TIMEOUT)
    }

    /// Kills (SIGKILL) the primary on `port` and waits until one of its
    /// replicas has taken over and the cluster is whole again; returns the
    /// new primary's port.
    pub fn kill_primary(&mut self, port: u16) -> Result<u16> {
        let before = self.nodes();
        let victim = before
            .iter()
            .find(|n| n.port == port && n.primary)
            .context("not a primary")?
            .clone();
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .context("not ours")?;
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + FAILOVER_TIMEOUT;
        loop {
            let promoted = before
                .iter()
                .filter(|n| n.primary_id.as_deref() == Some(victim.id.as_str()))
                .find_map(|r| {
                    self.nodes()
                        .into_iter()
                        .find(|n| n.id == r.id && n.primary && !n.slots.is_empty())
                });
            if let Some(p) = promoted {
                self.wait_ok(START_TIMEOUT)?;
                return Ok(p.port);
            }
            if Instant::now() > deadline {
                bail!("no replica of port {port} took over");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node says `cluster_state:ok` and agrees on
    /// who serves every slot.
    fn wait_ok(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.running().all(|p| {
                conn(p)
                    .and_then(|mut c| {
                        Ok(redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c)?)
                    })
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            let views: Vec<Vec<(u16, u16, String)>> = self
                .running()
                .filter_map(|p| {
                    let text: String = redis::cmd("CLUSTER")
                        .arg("NODES")
                        .query(&mut conn(p).ok()?)
                        .ok()?;
                    let mut v: Vec<_> = parse_nodes(&text)
                        .into_iter()
                        .filter(|n| n.primary && !n.failed)
                        .flat_map(|n| {
                            n.slots
                                .iter()
                                .map(|&(a, b)| (a, b, n.id.clone()))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    v.sort();
                    Some(v)
                })
                .collect();
            if ok && views.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the cluster did not become ok");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One node, as `CLUSTER NODES` lists it.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// The primary it replicates, for a replica.
    pub primary_id: Option<String>,
    /// Marked failed (`fail`) by the cluster.
    pub failed: bool,
    /// Ranges of slots it serves (first, last), for a primary.
    pub slots: Vec<(u16, u16)>,
}

fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let port = f[1].split(['@', ':']).nth(1)?.parse().ok()?;
            let flags = f[2];
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|a| (a, a)),
                })
                .collect();
            Some(ClusterNode {
                id: f[0].to_owned(),
                port,
                primary: flags.contains("master"),
                primary_id: Some(f[3].to_owned()).filter(|p| p != "-"),
                failed: flags.contains("fail") && !flags.contains("fail?"),
                slots,
            })
        })
        .collect()
}

fn conn(port: u16) -> Result<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    Ok(client.get_connection_with_timeout(Duration::from_secs(2))?)
}

fn wait_ping(port: u16) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while conn(port)
        .and_then(|mut c| Ok(redis::cmd("PING").query::<String>(&mut c)?))
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("redis-server did not answer on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_are_read() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 7000\n\
b2 127.0.0.1:7002@17002 slave a1 0 0 1 connected\n\
c3 127.0.0.1:7003@17003 master,fail - 0 0 2 disconnected\n";
        let n = parse_nodes(text);
        assert_eq!(n.len(), 3);
        assert_eq!((n[0].port, n[0].primary), (7001, true));
        assert_eq!(n[0].slots, vec![(0, 5460), (7000, 7000)]);
        assert_eq!(n[1].primary_id.as_deref(), Some("a1"));
        assert!(!n[1].primary && n[2].failed && !n[0].failed);
    }
}
