//! SIGINT/SIGTERM → one root [`CancellationToken`]; every subsystem gets a child of it.
//! A second signal while shutting down exits at once (code 130).

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM. Must be called inside a runtime.
pub fn on_signals() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    // Registered now, not in the task: a signal that comes before the task first runs is
    // still caught (the default action would kill the process).
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return token;
    };
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        t.cancel();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("lab: second signal, exiting without waiting");
        std::process::exit(130);
    });
    token
}
