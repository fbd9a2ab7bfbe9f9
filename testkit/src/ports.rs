//! Free ports. The servers and proxies bind port 0 and report what they got;
//! only a process that must be told its port up front (`redis-server`) needs
//! one chosen for it, and it must never be the machine's own Redis port.

/// Redis' default port: a shared Redis may live there, never a test's.
const REDIS_DEFAULT_PORT: u16 = 6379;

/// A port on 127.0.0.1 that nothing listens on right now (never 6379).
pub fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0")
            .local_addr()
            .expect("a bound address")
            .port();
        if port != REDIS_DEFAULT_PORT {
            return port;
        }
    }
}
