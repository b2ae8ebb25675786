//! What the edges' socket tests share.

use lab_edges::EdgesConfig;

/// Run the edges of `cfg` on a runtime of their own thread, for the rest of the test process.
pub fn run_edges(cfg: EdgesConfig) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(lab_edges::run(cfg))
            .unwrap();
    });
}

/// A port nothing listens on now (bound, read back, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
