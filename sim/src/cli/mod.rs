//! The `switchboard carrier-sim` and `switchboard call` commands: clap flags and `run`
//! functions the binary calls. They return this crate's [`crate::Error`].

pub mod call;
pub mod carrier_sim;

pub use call::CallArgs;
pub use carrier_sim::CarrierSimArgs;

/// Resolves on ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
