//! The `collab` terminal editor. Not built yet: see the issue "Terminal editor".

fn main() {
    eprintln!("collab: the terminal editor is not built yet; use collab-server and its WebSocket protocol (docs/protocol.md)");
    std::process::exit(2);
}
