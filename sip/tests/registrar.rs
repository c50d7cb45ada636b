//! The agent registrar with a real softphone: baresip (Debian `baresip`) registers to our
//! endpoint with digest, `lookup_binding` finds its contact, and a call to that contact is
//! auto-answered; a second baresip with a wrong password never gets a binding.
//!
//! Without baresip installed the test prints a notice and passes, unless
//! SWITCHBOARD_REQUIRE_INTEROP=1 (CI), then it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use switchboard_sip::endpoint::{
    CallConfig, CallEvent, Endpoint, EndpointConfig, PasswordLookup, Registrar, RegistrarConfig,
};
use switchboard_sip::sdp::LocalMedia;
use switchboard_sip::CallOutcome;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

struct Baresip {
    child: Child,
    dir: PathBuf,
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
    let found = Path::new("/usr/bin/baresip").exists();
    if !found {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("baresip is not installed but SWITCHBOARD_REQUIRE_INTEROP=1");
        }
        eprintln!("NOTICE: baresip not installed; skipping the registrar interop test");
    }
    found
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

/// A mono 8 kHz WAV of one second of silence (baresip's audio source).
fn wav() -> Vec<u8> {
    let data_len: u32 = 16000;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(out.len() + data_len as usize, 0);
    out
}

/// A baresip whose one account registers as `user` with `password` at `registrar`.
fn start(user: &str, password: &str, registrar: SocketAddr) -> Baresip {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-registrar-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let play = dir.join("play.wav");
    std::fs::write(&play, wav()).expect("wav");
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
        format!("<sip:{user}@{registrar}>;auth_pass={password};regint=60;answermode=auto\n"),
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
    Baresip { child, dir }
}

#[tokio::test]
async fn baresip_registers_with_digest_and_is_called_at_its_contact() {
    if !installed() {
        return;
    }
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let ep = Endpoint::bind(EndpointConfig::new(addr))
        .await
        .expect("bind");
    let passwords: PasswordLookup = Arc::new(|user: &str| match user {
        "alice" | "mallory" => Some(format!("{user}-pw")),
        _ => None,
    });
    let registrar = Arc::new(Registrar::new(RegistrarConfig::new("127.0.0.1"), passwords));
    ep.enable_registrar(registrar.clone()).expect("enable");
    assert!(
        ep.enable_registrar(registrar.clone()).is_err(),
        "one registrar per endpoint"
    );

    let alice = start("alice", "alice-pw", ep.local_addr());
    let mallory = start("mallory", "wrong-pw", ep.local_addr());
    let contact = timeout(WAIT, async {
        loop {
            if let Some(c) = ep.lookup_binding("alice") {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let log = std::fs::read_to_string(alice.dir.join("baresip.log")).unwrap_or_default();
        panic!("alice did not register in time; baresip log:\n{log}")
    });
    assert!(contact.starts_with("sip:"), "{contact}");
    assert!(contact.contains("127.0.0.1:"), "{contact}");

    // Call alice where her phone registered: it answers on its own.
    let mut call = ep
        .call(CallConfig::new(
            &contact,
            "sip:dialer@127.0.0.1",
            LocalMedia::new("127.0.0.1", 43000, 1),
        ))
        .await
        .expect("call");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Answered { media, .. }) => {
                assert!(matches!(media.codec.payload_type, 0 | 8));
                break;
            }
            Some(CallEvent::Ended(cause)) => panic!("ended: {cause:?}"),
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
    call.hangup().expect("hangup");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Ended(cause)) => {
                assert_eq!(cause.outcome, CallOutcome::Completed);
                break;
            }
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }

    // Mallory's phone is refused (its log shows our 403) and gets no binding.
    let log = timeout(WAIT, async {
        loop {
            let log = std::fs::read_to_string(mallory.dir.join("baresip.log")).unwrap_or_default();
            if log.contains("403 Forbidden") {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("mallory's REGISTER refused in time");
    assert_eq!(ep.lookup_binding("mallory"), None, "{log}");
    assert_eq!(
        registrar
            .bindings(std::time::Instant::now())
            .into_iter()
            .map(|(u, _)| u)
            .collect::<Vec<_>>(),
        ["alice"]
    );
    drop(alice);
    drop(mallory);
}
