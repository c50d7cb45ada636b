//! Call setups + teardowns per second: the `switchboard call` driver (`cli::call::run`)
//! against the carrier simulator, each on its own thread and tokio runtime in this process.
//! Every call is a full SIP exchange over UDP on 127.0.0.1 (INVITE, 100, 180, 200, ACK, BYE,
//! 200) with an RTP stream opened and closed on each side.
//!
//! `cargo bench -p switchboard-sim --bench call_rate -- [COUNT] [CONCURRENT]`
//! (defaults 10000 and 200). For the two-process figure with the release binary, see
//! `scripts/call-rate.sh`.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use switchboard_sim::cli::CallArgs;
use switchboard_sim::{Behavior, Carrier, CarrierConfig, Plan};

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: CallArgs,
}

fn main() {
    let mut argv = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse::<u64>());
    let count = argv.next().and_then(Result::ok).unwrap_or(10_000);
    let concurrent = argv.next().and_then(Result::ok).unwrap_or(200);

    // The carrier: its own thread and single-threaded runtime, like a separate process.
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let carrier = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let bind: SocketAddr = "127.0.0.1:0".parse().expect("addr");
            let mut config = CarrierConfig::new(
                bind,
                Plan::always(Behavior::Human {
                    talk: Duration::from_secs(600),
                }),
            );
            config.ring = Duration::ZERO;
            config.keep_finished = 0;
            let c = Carrier::start(config).await.expect("carrier");
            addr_tx.send(c.sip_addr()).expect("send addr");
            let _ = stop_rx.await;
            let stats = c.stats();
            c.shutdown().await;
            stats
        })
    });
    let addr = addr_rx.recv().expect("carrier address");

    let to = format!("sip:+15550100001@{addr}");
    let wrap = Wrap::parse_from([
        "call",
        "--to",
        &to,
        "--count",
        &count.to_string(),
        "--concurrent",
        &concurrent.to_string(),
        "--ring-timeout",
        "30",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let result = rt.block_on(switchboard_sim::cli::call::run(wrap.args));
    let wall = started.elapsed();
    let _ = stop_tx.send(());
    let stats = carrier.join().expect("carrier thread");
    println!(
        "call_rate: {count} calls, {concurrent} concurrent: {:.0} calls/s (setup + teardown), \
         {:.2} s; carrier answered {}, ended by caller {}; {}",
        count as f64 / wall.as_secs_f64(),
        wall.as_secs_f64(),
        stats.answered,
        stats.ended_by_caller,
        match result {
            Ok(()) => "0 failures".to_owned(),
            Err(e) => format!("NOT all answered: {e}"),
        }
    );
}
