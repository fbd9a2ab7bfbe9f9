//! A TCP proxy in front of a server, for tests of what a client does when
//! the network misbehaves: it can cut every open connection, refuse new
//! ones, or swallow the server's bytes (so acks are lost) while the client's
//! still reach the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::server::TestServer;

/// A TCP proxy on 127.0.0.1 that can cut every connection, refuse new
/// ones, or stop passing the server's bytes to the client. It runs until
/// its runtime ends.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    conns: Mutex<Vec<AbortHandle>>,
    refusing: AtomicBool,
    deaf: AtomicBool,
}

impl Proxy {
    /// A proxy to `server`, on the server's runtime.
    pub fn in_front_of(server: &TestServer) -> Self {
        let target = server.addr.parse().expect("a socket address");
        Self::start(server.runtime().handle(), target)
    }

    /// Starts a proxy to `target` on `rt` (from inside a runtime or not).
    pub fn start(rt: &Handle, target: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        rt.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("proxy listener");
            while let Ok((inbound, _)) = listener.accept().await {
                if st.refusing.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let (mut in_r, mut in_w) = inbound.into_split();
                let (mut out_r, mut out_w) = outbound.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
                });
                let st2 = st.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match out_r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // While deaf, the client hears nothing (acks get lost).
                        if st2.deaf.load(Ordering::SeqCst) {
                            continue;
                        }
                        if in_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut conns = st.conns.lock().expect("lock");
                conns.push(up.abort_handle());
                conns.push(down.abort_handle());
            }
        });
        Self { addr, state }
    }

    /// `http://addr`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection (both directions).
    pub fn cut(&self) {
        for c in self.state.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    /// While true, new connections are closed at once.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }

    /// While true, the server's bytes are swallowed.
    pub fn deafen(&self, on: bool) {
        self.state.deaf.store(on, Ordering::SeqCst);
    }
}
