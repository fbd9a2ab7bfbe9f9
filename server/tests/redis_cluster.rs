//! Two `collab-server` instances on a private Redis Cluster (3 primaries,
//! a replica each): rooms spread over every shard converge, and keep every
//! acknowledged edit exactly once while one room's slot moves to another
//! primary and a primary is killed so that its replica takes over.

mod common;

use std::time::Duration;

use collab_testkit::{TestCluster, TestServer};
use common::session::{assert_converged, planned_session, Plan};
use common::SERVER;
use futures_util::future::join_all;

/// Rooms, and typists in each.
const ROOMS: usize = 30;
const TYPISTS: usize = 6;

fn instance(cluster: &TestCluster) -> TestServer {
    TestServer::command(SERVER)
        .redis(&cluster.url())
        .args(["--redis-cluster", "--redis-wait-replicas", "1"])
        .start()
}

/// The slot a room's keys live on.
fn slot(cluster: &TestCluster, room: &str) -> u16 {
    cluster.slot_of(&format!("collab:{{{room}}}:meta"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_every_shard_survive_a_moved_slot_and_a_failover() {
    let mut cluster = TestCluster::start(3, 1);
    let a = instance(&cluster);
    let b = instance(&cluster);
    let addrs = vec![a.addr.clone(), b.addr.clone()];

    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let on = if i % 2 == 0 { &a } else { &b };
        rooms.push(on.create_room("").await);
    }
    let mut owners: Vec<u16> = rooms
        .iter()
        .map(|r| cluster.owner(slot(&cluster, r)).port)
        .collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), 3, "{ROOMS} rooms on every shard");

    // Everyone types in every room at once; everything converges.
    let run = |seed: u64, rooms: Vec<String>, pace_ms: u64, edits: usize| {
        let addrs = addrs.clone();
        async move {
            let sessions = rooms.iter().enumerate().map(|(i, room)| {
                let plan = Plan {
                    clients: TYPISTS,
                    edits,
                    seed: seed + i as u64,
                    pace_ms,
                    ..Plan::default()
                };
                planned_session(addrs.clone(), room, plan, async {}, &addrs)
            });
            join_all(sessions).await
        }
    };
    let sessions = run(1, rooms.clone(), 0, 10).await;
    for (session, room) in sessions.iter().zip(&rooms) {
        assert_converged(session, &addrs, room).await;
    }

    // Again in fresh rooms (typists' ids restart), while the first room's
    // slot moves to another primary and then another room's primary is
    // killed (its replica takes over).
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let on = if i % 2 == 0 { &a } else { &b };
        rooms.push(on.create_room("").await);
    }
    let moved = slot(&cluster, &rooms[0]);
    let from = cluster.owner(moved).port;
    let to = cluster
        .nodes()
        .into_iter()
        .find(|n| n.primary && n.port != from)
        .expect("another primary")
        .port;
    let victim = rooms
        .iter()
        .map(|r| cluster.owner(slot(&cluster, r)).port)
        .find(|p| *p != to)
        .expect("a room on another primary");
    let typing = run(100, rooms.clone(), 60, 40);
    let disrupt = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| cluster.move_slot(moved, to)).expect("slot moved");
        assert_eq!(cluster.owner(moved).port, to);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let promoted =
            tokio::task::block_in_place(|| cluster.kill_primary(victim)).expect("failover");
        assert_ne!(promoted, victim);
        // As an operator would: the old primary comes back, as a replica.
        tokio::task::block_in_place(|| cluster.restart(victim)).expect("restarted");
    };
    let (sessions, ()) = tokio::join!(typing, disrupt);
    for (session, room) in sessions.iter().zip(&rooms) {
        assert_converged(session, &addrs, room).await;
    }
    let reconnects: usize = sessions
        .iter()
        .flat_map(|s| &s.typists)
        .map(|t| t.reconnects)
        .sum();
    eprintln!("typists reconnected {reconnects} times during the move and the failover");
}
