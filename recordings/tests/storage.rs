//! One storage test suite, run against the filesystem backend and a real S3-compatible server
//! (moto) on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use switchboard_recordings::{
    ByteRange, Error, Key, RecordingStore, S3Config, StorageConfig, MULTIPART_THRESHOLD,
};

const TENANT: &str = "0190a6a4-3c1e-7b6a-9f00-1234567890ab";
const OTHER_TENANT: &str = "0190a6a4-3c1e-7b6a-9f00-ffffffffffff";

fn key(call: u32, ext: &str) -> Key {
    Key::for_call(TENANT, &format!("0190a6a4-3c1e-7b6a-9f00-{call:012x}"), ext).unwrap()
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn read_all(store: &RecordingStore, key: &Key, range: Option<ByteRange>) -> Vec<u8> {
    let download = store.get(key, range).await.unwrap();
    let chunks: Vec<_> = download.stream.try_collect().await.unwrap();
    chunks.concat()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The suite every backend must pass.
async fn storage_suite(store: &RecordingStore) {
    let dir = tempfile::tempdir().unwrap();

    // Missing objects.
    let missing = key(1, "wav");
    assert_eq!(store.head(&missing).await.unwrap(), None);
    match store.get(&missing, None).await {
        Err(Error::NotFound { key }) => assert_eq!(key, missing.as_str()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        store.get(&missing, Some((0..10).into())).await,
        Err(Error::NotFound { .. })
    ));
    store.delete(&missing).await.unwrap();

    // Put, head, get.
    let small = pattern(10_000, 1);
    let k = key(2, "wav");
    let written = store
        .put_file(&k, &write_file(dir.path(), "small", &small))
        .await
        .unwrap();
    assert_eq!(written, small.len() as u64);
    let info = store.head(&k).await.unwrap().unwrap();
    assert_eq!(info.size, small.len() as u64);
    let download = store.get(&k, None).await.unwrap();
    assert_eq!(download.info.size, small.len() as u64);
    assert_eq!(download.info.last_modified, info.last_modified);
    assert_eq!(download.range, 0..small.len() as u64);
    assert_eq!(read_all(store, &k, None).await, small);

    // Ranges: first bytes, middle, open-ended, suffix, past-the-end clamp.
    let first = store.get(&k, Some((0..100).into())).await.unwrap();
    assert_eq!(first.range, 0..100);
    assert_eq!(
        first.info.size,
        small.len() as u64,
        "info is the whole object's"
    );
    assert_eq!(
        read_all(store, &k, Some((0..100).into())).await,
        small[..100]
    );
    assert_eq!(
        read_all(store, &k, Some((4321..5000).into())).await,
        small[4321..5000]
    );
    assert_eq!(
        read_all(store, &k, Some(ByteRange::From(9_990))).await,
        small[9_990..]
    );
    let suffix = store.get(&k, Some(ByteRange::Suffix(500))).await.unwrap();
    assert_eq!(suffix.range, 9_500..10_000);
    assert_eq!(
        read_all(store, &k, Some(ByteRange::Suffix(500))).await,
        small[9_500..]
    );
    assert_eq!(
        read_all(store, &k, Some((9_000..20_000).into())).await,
        small[9_000..]
    );
    for bad in [
        ByteRange::Bounded(10_000..10_010),
        ByteRange::From(20_000),
        ByteRange::Bounded(5..5),
    ] {
        match store.get(&k, Some(bad.clone())).await {
            Err(Error::RangeNotSatisfiable { size }) => assert_eq!(size, 10_000),
            other => panic!("{bad:?}: expected RangeNotSatisfiable, got {other:?}"),
        }
    }

    // Overwrite: the new content replaces the old, whatever the sizes.
    let replacement = pattern(3_000, 2);
    store
        .put_file(&k, &write_file(dir.path(), "replacement", &replacement))
        .await
        .unwrap();
    assert_eq!(store.head(&k).await.unwrap().unwrap().size, 3_000);
    assert_eq!(read_all(store, &k, None).await, replacement);

    // Keys of other calls and tenants are independent.
    let other_call = key(3, "wav");
    let other_tenant =
        Key::for_call(OTHER_TENANT, "0190a6a4-3c1e-7b6a-9f00-000000000002", "wav").unwrap();
    assert_eq!(store.head(&other_call).await.unwrap(), None);
    assert_eq!(store.head(&other_tenant).await.unwrap(), None);
    let same_call_other_ext = key(2, "mp3");
    assert_eq!(store.head(&same_call_other_ext).await.unwrap(), None);

    // An empty file is a valid (empty) object.
    let empty = key(4, "ogg");
    assert_eq!(
        store
            .put_file(&empty, &write_file(dir.path(), "empty", b""))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.head(&empty).await.unwrap().unwrap().size, 0);
    assert!(read_all(store, &empty, None).await.is_empty());

    // A missing source file is an I/O error and stores nothing.
    let nothing = key(5, "wav");
    assert!(matches!(
        store
            .put_file(&nothing, &dir.path().join("does-not-exist"))
            .await,
        Err(Error::Io { .. })
    ));
    assert_eq!(store.head(&nothing).await.unwrap(), None);
    // ...and a failed overwrite leaves the existing object as it was.
    assert!(matches!(
        store.put_file(&k, &dir.path().join("does-not-exist")).await,
        Err(Error::Io { .. })
    ));
    assert_eq!(read_all(store, &k, None).await, replacement);

    // Large file: above the multipart threshold, several parts.
    let big_len = 12 * 1024 * 1024 + 12_345;
    assert!(big_len as u64 > MULTIPART_THRESHOLD);
    let big = pattern(big_len, 3);
    let big_key = key(6, "flac");
    let written = store
        .put_file(&big_key, &write_file(dir.path(), "big", &big))
        .await
        .unwrap();
    assert_eq!(written, big_len as u64);
    assert_eq!(
        store.head(&big_key).await.unwrap().unwrap().size,
        big_len as u64
    );
    let round_trip = read_all(store, &big_key, None).await;
    assert!(round_trip == big, "large object differs");
    // A range across the 5 MiB part boundary.
    let boundary = 5 * 1024 * 1024;
    assert_eq!(
        read_all(
            store,
            &big_key,
            Some((boundary - 1000..boundary + 1000).into())
        )
        .await,
        big[boundary as usize - 1000..boundary as usize + 1000]
    );
    assert_eq!(
        read_all(store, &big_key, Some(ByteRange::Suffix(70_000))).await,
        big[big_len - 70_000..]
    );

    // Delete, idempotently.
    for k in [&k, &empty, &big_key] {
        store.delete(k).await.unwrap();
        assert_eq!(store.head(k).await.unwrap(), None);
        assert!(matches!(
            store.get(k, None).await,
            Err(Error::NotFound { .. })
        ));
        store.delete(k).await.unwrap();
    }
}

#[tokio::test]
async fn filesystem_backend() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::local_default(data_dir.path());
    assert_eq!(
        config,
        StorageConfig::Local {
            root: data_dir.path().join("recordings")
        }
    );
    let store = RecordingStore::new(&config).unwrap();
    storage_suite(&store).await;

    // Files land under <data-dir>/recordings/<key>, and nothing else is left behind.
    let k = key(7, "wav");
    let src = write_file(data_dir.path(), "src.wav", b"RIFF....WAVE");
    store.put_file(&k, &src).await.unwrap();
    let on_disk = data_dir.path().join("recordings").join(k.as_str());
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"RIFF....WAVE");
    store.delete(&k).await.unwrap();
    assert!(!on_disk.exists());
    let leftovers: Vec<_> = walk(&data_dir.path().join("recordings"));
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A moto S3 server on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_available() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto server");
    let moto = Moto {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    // Guard, not an assertion on speed: moto takes a few seconds to import.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&moto.addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start listening on {}",
            moto.addr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// `PUT /{bucket}` with plain HTTP/1.1 (moto does not check signatures).
fn create_bucket(addr: SocketAddr, bucket: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "create bucket: {response}"
    );
}

#[tokio::test]
async fn s3_backend_against_moto() {
    if !moto_available() {
        if std::env::var("SWITCHBOARD_REQUIRE_S3").as_deref() == Ok("1") {
            panic!(
                "SWITCHBOARD_REQUIRE_S3=1 but moto is not installed: pip install 'moto[server]'"
            );
        }
        eprintln!("NOTICE: skipping the S3 storage test: `python3 -m pip install 'moto[server]'`");
        return;
    }
    let moto = start_moto();
    create_bucket(moto.addr, "recordings");
    let config = StorageConfig::S3(S3Config {
        endpoint: Some(format!("http://{}", moto.addr)),
        region: "us-east-1".into(),
        bucket: "recordings".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        allow_http: true,
        path_style: true,
    });
    assert!(
        !format!("{config:?}").contains("testing\", allow"),
        "secret not redacted"
    );
    let store = RecordingStore::new(&config).unwrap();
    storage_suite(&store).await;
    drop(moto);
}
