//! Interop with a real baresip (Debian `baresip`) as an auto-answering phone: our Endpoint
//! sends INVITE straight to it, gets the 200 with SDP, ACKs, then hangs up with BYE.
//!
//! Without baresip installed the test prints a notice and passes, unless
//! SWITCHBOARD_REQUIRE_INTEROP=1 (CI), then it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_sip::endpoint::{CallConfig, CallEvent, Endpoint, EndpointConfig};
use switchboard_sip::sdp::LocalMedia;
use switchboard_sip::CallOutcome;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

struct Baresip {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    let found = Path::new("/usr/bin/baresip").exists()
        || Command::new("which")
            .arg("baresip")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("baresip is not installed but SWITCHBOARD_REQUIRE_INTEROP=1");
        }
        eprintln!("NOTICE: baresip not installed; skipping the baresip interop test");
    }
    found
}

/// A mono 16-bit 8 kHz WAV of `seconds` of a quiet 440 Hz-ish square wave.
fn wav(seconds: u32) -> Vec<u8> {
    let samples = 8000 * seconds;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let v: i16 = if (i / 9) % 2 == 0 { 2000 } else { -2000 };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let port = udp.local_addr().expect("probe addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn start() -> Baresip {
    let port = free_port();
    let dir =
        std::env::temp_dir().join(format!("switchboard-baresip-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let play = dir.join("play.wav");
    std::fs::write(&play, wav(10)).expect("wav");
    let config = format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{port}\n\
         net_interface\t\t127.0.0.1\n\
         audio_player\t\taufile,{dir}/heard.wav\n\
         audio_source\t\taufile,{play}\n\
         audio_alert\t\taufile,{play}\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\tsndfile.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         snd_path\t\t{dir}\n",
        dir = dir.display(),
        play = play.display()
    );
    std::fs::write(dir.join("config"), config).expect("config");
    std::fs::write(
        dir.join("accounts"),
        "<sip:bob@127.0.0.1>;regint=0;answermode=auto\n",
    )
    .expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    let log = std::fs::File::create(dir.join("baresip.log")).expect("log");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let b = Baresip { child, dir, addr };
    wait_ready(addr).await;
    b
}

async fn wait_ready(addr: SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let me = sock.local_addr().expect("addr");
    let mut buf = vec![0u8; 4096];
    for i in 1..=100 {
        let probe = format!(
            "OPTIONS sip:bob@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{i}\r\n\
             From: <sip:probe@{me}>;tag=r\r\nTo: <sip:bob@{addr}>\r\nCall-ID: ready{i}@test\r\n\
             CSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(probe.as_bytes(), addr).await;
        if let Ok(Ok(_)) = timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await {
            return;
        }
    }
    panic!("baresip did not answer OPTIONS within 20 s");
}

#[tokio::test]
async fn baresip_auto_answers_our_invite_then_bye() {
    if !installed() {
        return;
    }
    let b = start().await;
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let ep = timeout(WAIT, Endpoint::bind(EndpointConfig::new(addr)))
        .await
        .expect("bind in time")
        .expect("bind");
    let config = CallConfig::new(
        &format!("sip:bob@{}", b.addr),
        "sip:alice@127.0.0.1",
        LocalMedia::new("127.0.0.1", 42000, 1),
    );
    let mut call = ep.call(config).await.expect("call");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Answered { sdp, media }) => {
                assert!(sdp.audio().is_some(), "answer has an audio stream");
                assert_eq!(media.remote_address, "127.0.0.1");
                assert!(media.remote_port != 0);
                assert!(
                    matches!(media.codec.payload_type, 0 | 8),
                    "G.711 agreed: {:?}",
                    media.codec
                );
                break;
            }
            Some(CallEvent::Ended(cause)) => {
                let log = std::fs::read_to_string(b.dir.join("baresip.log")).unwrap_or_default();
                panic!("ended: {cause:?}\nbaresip log:\n{log}");
            }
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
    call.hangup().expect("hangup");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Ended(cause)) => {
                assert_eq!(cause.outcome, CallOutcome::Completed);
                assert!(!cause.by_remote, "our BYE ended it");
                break;
            }
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
}
