//! Five real WebSocket clients type random multi-byte edits into one room at
//! once; every replica must end identical to `GET /rooms/{id}`, and each
//! client's stream must carry every revision exactly once, in order.

mod common;

use std::time::Duration;

use collab_testkit::{random_edit, Bot, TestServer};
use common::SERVER;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

const CLIENTS: usize = 5;
const EDITS: usize = 60;

async fn run_bot(
    addr: String,
    room: String,
    index: usize,
    seed: u64,
    done: tokio::sync::mpsc::Sender<()>,
    mut final_revision: watch::Receiver<Option<u64>>,
) -> Bot {
    let mut bot = Bot::join(
        &addr,
        &room,
        &format!("client_id=bot{index}&name=bot{index}"),
    )
    .await;
    let mut rng = StdRng::seed_from_u64(seed * 100 + index as u64);
    for _ in 0..EDITS {
        let op = random_edit(&mut rng, bot.replica.doc.len_chars());
        bot.edit(op).await;
        // Interleave reading with typing, at random.
        let pause = Duration::from_millis(rng.random_range(0..8));
        let deadline = tokio::time::Instant::now() + pause;
        while let Ok(msg) = tokio::time::timeout_at(deadline, bot.client.recv()).await {
            bot.handle(msg).await;
        }
    }
    // All my edits are acknowledged: tell the test, which fixes the final
    // revision once every bot got here.
    bot.settle(0).await;
    done.send(()).await.expect("test is waiting");
    // Wait for the final revision everyone must reach.
    let target = loop {
        if let Some(r) = *final_revision.borrow() {
            break r;
        }
        tokio::select! {
            _ = final_revision.changed() => {}
            msg = bot.client.recv() => bot.handle(msg).await,
        }
    };
    bot.settle(target).await;
    bot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_typing_at_once_converge() {
    let server = TestServer::process(SERVER, &[], &[]);
    for seed in 0..3u64 {
        let room = server
            .create_room("fn main() {\n    println!(\"héllo 世界\");\n}\n")
            .await;
        let (tx, rx) = watch::channel(None);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(CLIENTS);
        let mut handles = Vec::new();
        for i in 0..CLIENTS {
            let (addr, room, rx, done) = (
                server.addr.clone(),
                room.clone(),
                rx.clone(),
                done_tx.clone(),
            );
            handles.push(tokio::spawn(run_bot(addr, room, i, seed, done, rx)));
        }
        for _ in 0..CLIENTS {
            done_rx.recv().await.expect("every bot finishes typing");
        }
        // Nobody types any more: this revision is final.
        let last = server.room(&room).await.unwrap().revision;
        tx.send(Some(last)).unwrap();
        let expected = server.code(&room).await;
        for h in handles {
            let bot = h.await.expect("bot finished");
            assert_eq!(
                bot.replica.text(),
                expected,
                "seed {seed}: replica diverged"
            );
            assert_eq!(bot.replica.sync.revision(), last);
            bot.assert_revisions_contiguous();
        }
        // Local edits compose while one is in flight, so commits are fewer than edits.
        assert!(
            last >= 3 * CLIENTS as u64,
            "seed {seed}: only {last} revisions committed"
        );
    }
}
