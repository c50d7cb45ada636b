//! Where recordings live: the local filesystem (default) or an S3-compatible bucket.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::{Error, Key, Result};

/// Files up to this size are sent in one PUT; larger ones as a multipart upload.
pub const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Size of each multipart part (S3 requires at least 5 MiB for all but the last).
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Read buffer while streaming a file into a multipart upload.
const READ_CHUNK: usize = 256 * 1024;
/// Parts in flight at once during a multipart upload.
const MAX_CONCURRENT_PARTS: usize = 2;

/// Which backend holds the recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// A directory on the local filesystem (created if missing).
    Local {
        /// Root directory; keys are paths below it.
        root: PathBuf,
    },
    /// An S3-compatible service (AWS S3, MinIO, Ceph, moto...).
    S3(S3Config),
}

impl StorageConfig {
    /// The default: `<data_dir>/recordings/` on the local filesystem.
    pub fn local_default(data_dir: &Path) -> StorageConfig {
        StorageConfig::Local {
            root: data_dir.join("recordings"),
        }
    }
}

/// Settings of an S3-compatible backend.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Service URL, e.g. `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Bucket name (must exist).
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (local servers only).
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted style
    /// (`bucket.endpoint/key`); most self-hosted servers need `true`.
    pub path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// Size and modification time of a stored recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// Last modification (upload) time.
    pub last_modified: DateTime<Utc>,
    /// The backend's entity tag, if it has one (usable as an HTTP `ETag`).
    pub e_tag: Option<String>,
}

impl From<ObjectMeta> for ObjectInfo {
    fn from(meta: ObjectMeta) -> Self {
        ObjectInfo {
            size: meta.size,
            last_modified: meta.last_modified,
            e_tag: meta.e_tag,
        }
    }
}

/// Which bytes of an object to read; the three forms of an HTTP `Range: bytes=` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive); an `end` past the object's end reads to the end.
    Bounded(Range<u64>),
    /// From `start` to the end (`bytes=start-`).
    From(u64),
    /// The last `n` bytes (`bytes=-n`); the whole object if it is shorter.
    Suffix(u64),
}

impl From<Range<u64>> for ByteRange {
    fn from(range: Range<u64>) -> Self {
        ByteRange::Bounded(range)
    }
}

/// A stream of an object's bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The answer of [`RecordingStore::get`].
pub struct Download {
    /// The whole object's size and modification time.
    pub info: ObjectInfo,
    /// The byte range being returned (`0..size` without a range), for `Content-Range`.
    pub range: Range<u64>,
    /// The bytes of `range`, in order.
    pub stream: ByteStream,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Recording storage over [`object_store`]: the filesystem or an S3-compatible bucket.
///
/// Writes are atomic at the key: the filesystem backend writes a temporary file and renames
/// it, S3 makes an object visible only when its PUT or multipart upload completes. A failed or
/// interrupted [`put_file`](Self::put_file) leaves no object (and any earlier object under the
/// key untouched). Cheap to clone.
#[derive(Clone, Debug)]
pub struct RecordingStore {
    inner: Arc<dyn ObjectStore>,
}

impl RecordingStore {
    /// Opens the configured backend. For [`StorageConfig::Local`] the root directory is
    /// created if missing (blocking, once at start-up). No network traffic happens here.
    pub fn new(config: &StorageConfig) -> Result<RecordingStore> {
        let inner: Arc<dyn ObjectStore> = match config {
            StorageConfig::Local { root } => {
                std::fs::create_dir_all(root).map_err(|source| Error::Io {
                    path: root.clone(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(Error::Config)?
                    .with_automatic_cleanup(true);
                Arc::new(fs)
            }
            StorageConfig::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_region(&s3.region)
                    .with_bucket_name(&s3.bucket)
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(!s3.path_style);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                Arc::new(builder.build().map_err(Error::Config)?)
            }
        };
        Ok(RecordingStore { inner })
    }

    /// Wraps any [`ObjectStore`] (e.g. `object_store::memory::InMemory` in tests).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>) -> RecordingStore {
        RecordingStore { inner }
    }

    /// Uploads the file at `path` under `key`, replacing any object there, and returns the
    /// number of bytes stored. Files above [`MULTIPART_THRESHOLD`] are streamed as a
    /// multipart upload, so memory use stays bounded; a failed upload is aborted.
    pub async fn put_file(&self, key: &Key, path: &Path) -> Result<u64> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
        let len = file.metadata().await.map_err(io_err)?.len();
        let location = location(key);

        if len <= MULTIPART_THRESHOLD {
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut buf).await.map_err(io_err)?;
            let size = buf.len() as u64;
            self.inner
                .put(&location, PutPayload::from(buf))
                .await
                .map_err(Error::Storage)?;
            return Ok(size);
        }

        let upload = self
            .inner
            .put_multipart(&location)
            .await
            .map_err(Error::Storage)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut size = 0u64;
        let streamed: Result<()> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(io_err)?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(MAX_CONCURRENT_PARTS)
                    .await
                    .map_err(Error::Storage)?;
                writer.write(&buf[..n]);
                size += n as u64;
            }
        }
        .await;
        match streamed {
            Ok(()) => {
                writer.finish().await.map_err(Error::Storage)?;
                Ok(size)
            }
            Err(e) => {
                // Best effort: the object never became visible either way.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Reads an object, or the given byte range of it, as a stream.
    ///
    /// Errors: [`Error::NotFound`] if there is no object, [`Error::RangeNotSatisfiable`] if
    /// the range is empty or starts at or past the end of the object.
    pub async fn get(&self, key: &Key, range: Option<ByteRange>) -> Result<Download> {
        let range = match range {
            None => None,
            Some(ByteRange::Bounded(r)) if r.start >= r.end => {
                return Err(self.unsatisfiable(key).await);
            }
            Some(ByteRange::Suffix(0)) => return Err(self.unsatisfiable(key).await),
            Some(ByteRange::Bounded(r)) => Some(GetRange::Bounded(r)),
            Some(ByteRange::From(start)) => Some(GetRange::Offset(start)),
            Some(ByteRange::Suffix(n)) => Some(GetRange::Suffix(n)),
        };
        let ranged = range.is_some();
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let result = match self.inner.get_opts(&location(key), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(not_found(key)),
            // Backends differ in how they report an unsatisfiable range; ask for the size.
            Err(e) if ranged => {
                return Err(match self.head(key).await {
                    Ok(Some(info)) => Error::RangeNotSatisfiable { size: info.size },
                    Ok(None) => not_found(key),
                    Err(_) => Error::Storage(e),
                })
            }
            Err(e) => return Err(Error::Storage(e)),
        };
        let range = result.range.clone();
        let info = ObjectInfo::from(result.meta.clone());
        let stream = result
            .into_stream()
            .map(|chunk| chunk.map_err(Error::Storage))
            .boxed();
        Ok(Download {
            info,
            range,
            stream,
        })
    }

    /// Size and modification time of an object, `None` if there is none.
    pub async fn head(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        match self.inner.head(&location(key)).await {
            Ok(meta) => Ok(Some(meta.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// Deletes an object. Deleting a missing object succeeds.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        match self.inner.delete(&location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    async fn unsatisfiable(&self, key: &Key) -> Error {
        match self.head(key).await {
            Ok(Some(info)) => Error::RangeNotSatisfiable { size: info.size },
            Ok(None) => not_found(key),
            Err(e) => e,
        }
    }
}

fn location(key: &Key) -> ObjectPath {
    // A Key holds only `[a-z0-9-./]` in a fixed layout, so it is always a valid path.
    ObjectPath::from(key.as_str())
}

fn not_found(key: &Key) -> Error {
    Error::NotFound {
        key: key.to_string(),
    }
}
