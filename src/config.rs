//! Settings: defaults < config file (TOML) < `SWITCHBOARD_*` environment < flags.
//! Every setting has one name: `data_dir` in the file, `SWITCHBOARD_DATA_DIR` in the
//! environment, `--data-dir` on the command line.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

/// The settings file's shape; every key optional (see switchboard.example.toml).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub jwt_secret: Option<String>,
    pub token_ttl_hours: Option<u64>,
    pub rate_limit_per_user: Option<u32>,
    pub rate_limit_per_ip: Option<u32>,
    pub login_attempts: Option<u32>,
    pub upload_max_bytes: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub default_country: Option<String>,
    pub allow_signup: Option<bool>,
    pub log_format: Option<String>,
    pub recording_max_bytes: Option<u64>,
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_allow_http: Option<bool>,
    pub sip_bind: Option<String>,
    pub sip_public_addr: Option<String>,
    pub secret_key: Option<String>,
    pub rtp_ports: Option<String>,
}

/// Flags shared by every command that opens the database; each also reads its
/// `SWITCHBOARD_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// TOML settings file.
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, the generated JWT secret and upload spool [default: ./data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://<data_dir>/switchboard.db].
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// pretty | json [default: pretty].
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// Flags of `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// HTTP listen address [default: 127.0.0.1:3000].
    #[arg(long, env = "SWITCHBOARD_HTTP")]
    pub http: Option<String>,
    /// HS256 secret for tokens [default: generated into <data_dir>/jwt_secret].
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Token lifetime in hours [default: 24].
    #[arg(long, env = "SWITCHBOARD_TOKEN_TTL_HOURS")]
    pub token_ttl_hours: Option<u64>,
    /// Requests per minute per user, 0 = off [default: 100].
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PER_USER")]
    pub rate_limit_per_user: Option<u32>,
    /// Requests per minute per client IP, 0 = off [default: 600].
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PER_IP")]
    pub rate_limit_per_ip: Option<u32>,
    /// Failed logins per e-mail and per IP in 15 minutes [default: 5].
    #[arg(long, env = "SWITCHBOARD_LOGIN_ATTEMPTS")]
    pub login_attempts: Option<u32>,
    /// Largest CSV upload in bytes [default: 52428800 = 50 MB].
    #[arg(long, env = "SWITCHBOARD_UPLOAD_MAX_BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Allowed CORS origins, comma-separated (`*` = any) [default: none, same-origin].
    #[arg(long, env = "SWITCHBOARD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// ISO country for national numbers [default: US].
    #[arg(long, env = "SWITCHBOARD_DEFAULT_COUNTRY")]
    pub default_country: Option<String>,
    /// Whether anyone may register a new tenant [default: true].
    #[arg(long, env = "SWITCHBOARD_ALLOW_SIGNUP")]
    pub allow_signup: Option<bool>,
    /// Largest recording upload in bytes [default: 104857600 = 100 MB].
    #[arg(long, env = "SWITCHBOARD_RECORDING_MAX_BYTES")]
    pub recording_max_bytes: Option<u64>,
    /// Store recordings in this S3 bucket instead of <data_dir>/recordings.
    #[arg(long, env = "SWITCHBOARD_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3-compatible endpoint (e.g. http://127.0.0.1:9000) [default: AWS].
    #[arg(long, env = "SWITCHBOARD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "SWITCHBOARD_S3_REGION")]
    pub s3_region: Option<String>,
    #[arg(long, env = "SWITCHBOARD_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "SWITCHBOARD_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Allow plain http to the S3 endpoint (local servers) [default: false].
    #[arg(long, env = "SWITCHBOARD_S3_ALLOW_HTTP")]
    pub s3_allow_http: Option<bool>,
    /// SIP (UDP and TCP) listen address, or `off` for no SIP [default: 0.0.0.0:5060].
    #[arg(long, env = "SWITCHBOARD_SIP_BIND")]
    pub sip_bind: Option<String>,
    /// Address (IP or IP:port) put in Via and Contact [default: the bind address; for a
    /// wildcard bind, the local address of the default route].
    #[arg(long, env = "SWITCHBOARD_SIP_PUBLIC_ADDR")]
    pub sip_public_addr: Option<String>,
    /// 64 hex digits sealing stored SIP passwords [default: generated into <data_dir>/secret_key].
    #[arg(long, env = "SWITCHBOARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// UDP ports of the call media, MIN-MAX (RTP on even ports, RTCP on the next odd one)
    /// [default: 10000-20000].
    #[arg(long, env = "SWITCHBOARD_RTP_PORTS")]
    pub rtp_ports: Option<String>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub jwt_secret: Option<String>,
    pub token_ttl_hours: u64,
    pub rate_limit_per_user: u32,
    pub rate_limit_per_ip: u32,
    pub login_attempts: u32,
    pub upload_max_bytes: u64,
    pub cors_origins: Vec<String>,
    pub default_country: String,
    pub allow_signup: bool,
    pub log_format: String,
    pub recording_max_bytes: u64,
    pub recordings: switchboard_recordings::StorageConfig,
    /// `None`: SIP is off.
    pub sip_bind: Option<SocketAddr>,
    pub sip_public_addr: Option<SocketAddr>,
    pub secret_key: Option<String>,
    /// The media port range (lowest, highest).
    pub rtp_ports: (u16, u16),
}

/// Reads the file (if any) and merges flags/environment over it.
pub fn resolve(common: &CommonArgs, serve: &ServeArgs) -> Result<Settings> {
    let file = match &common.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("config file {} is invalid", path.display()))?
        }
        None => FileConfig::default(),
    };
    let data_dir = common
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./data"));
    let database_url = common
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| default_db_url(&data_dir));
    let log_format = common
        .log_format
        .clone()
        .or(file.log_format)
        .unwrap_or_else(|| "pretty".into());
    if log_format != "pretty" && log_format != "json" {
        bail!("log_format must be pretty or json, not {log_format:?}");
    }
    let default_country = serve
        .default_country
        .clone()
        .or(file.default_country)
        .unwrap_or_else(|| "US".into())
        .to_uppercase();
    if !switchboard_engine::phone::is_valid_country(&default_country) {
        bail!("default_country {default_country:?} is not an ISO 3166 alpha-2 code");
    }
    let s3_bucket = serve.s3_bucket.clone().or(file.s3_bucket);
    let recordings = match s3_bucket {
        None => switchboard_recordings::StorageConfig::local_default(&data_dir),
        Some(bucket) => {
            switchboard_recordings::StorageConfig::S3(switchboard_recordings::S3Config {
                endpoint: serve.s3_endpoint.clone().or(file.s3_endpoint),
                region: serve
                    .s3_region
                    .clone()
                    .or(file.s3_region)
                    .unwrap_or_else(|| "us-east-1".into()),
                bucket,
                access_key_id: serve
                    .s3_access_key_id
                    .clone()
                    .or(file.s3_access_key_id)
                    .unwrap_or_default(),
                secret_access_key: serve
                    .s3_secret_access_key
                    .clone()
                    .or(file.s3_secret_access_key)
                    .unwrap_or_default(),
                allow_http: serve.s3_allow_http.or(file.s3_allow_http).unwrap_or(false),
                path_style: true,
            })
        }
    };
    let sip_bind = match serve
        .sip_bind
        .clone()
        .or(file.sip_bind)
        .unwrap_or_else(|| "0.0.0.0:5060".into())
        .trim()
    {
        "off" | "" => None,
        v => Some(v.parse::<SocketAddr>().with_context(|| {
            format!("sip_bind {v:?} must be IP:port (e.g. 0.0.0.0:5060) or off")
        })?),
    };
    let sip_public_addr = match serve.sip_public_addr.clone().or(file.sip_public_addr) {
        None => None,
        Some(v) => Some(parse_public_addr(&v, sip_bind)?),
    };
    let secret_key = serve.secret_key.clone().or(file.secret_key);
    let rtp_ports = match serve.rtp_ports.clone().or(file.rtp_ports) {
        None => (10000, 20000),
        Some(v) => parse_port_range(&v)?,
    };
    Ok(Settings {
        rtp_ports,
        sip_bind,
        sip_public_addr,
        secret_key,
        recording_max_bytes: serve
            .recording_max_bytes
            .or(file.recording_max_bytes)
            .unwrap_or(100 * 1024 * 1024),
        recordings,
        http: serve
            .http
            .clone()
            .or(file.http)
            .unwrap_or_else(|| "127.0.0.1:3000".into()),
        data_dir,
        database_url,
        jwt_secret: serve.jwt_secret.clone().or(file.jwt_secret),
        token_ttl_hours: serve
            .token_ttl_hours
            .or(file.token_ttl_hours)
            .unwrap_or(24)
            .max(1),
        rate_limit_per_user: serve
            .rate_limit_per_user
            .or(file.rate_limit_per_user)
            .unwrap_or(100),
        rate_limit_per_ip: serve
            .rate_limit_per_ip
            .or(file.rate_limit_per_ip)
            .unwrap_or(600),
        login_attempts: serve
            .login_attempts
            .or(file.login_attempts)
            .unwrap_or(5)
            .max(1),
        upload_max_bytes: serve
            .upload_max_bytes
            .or(file.upload_max_bytes)
            .unwrap_or(50 * 1024 * 1024),
        cors_origins: serve
            .cors_origins
            .clone()
            .or(file.cors_origins)
            .unwrap_or_default(),
        default_country,
        allow_signup: serve.allow_signup.or(file.allow_signup).unwrap_or(true),
        log_format,
    })
}

/// `MIN-MAX` with room for at least one RTP/RTCP pair.
fn parse_port_range(v: &str) -> Result<(u16, u16)> {
    let range = v
        .trim()
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)));
    match range {
        Some((min, max)) if min >= 1024 && max > min => Ok((min, max)),
        _ => bail!("rtp_ports {v:?} must be MIN-MAX with 1024 <= MIN < MAX (e.g. 10000-20000)"),
    }
}

/// `IP:port`, or an IP that takes the bind port.
fn parse_public_addr(v: &str, bind: Option<SocketAddr>) -> Result<SocketAddr> {
    let v = v.trim();
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    match v
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => Ok(SocketAddr::new(ip, bind.map_or(5060, |b| b.port()))),
        Err(_) => bail!("sip_public_addr {v:?} must be an IP address or IP:port"),
    }
}

/// The key sealing stored SIP passwords: the configured one, else `<data_dir>/secret_key`
/// (generated there, owner-only, on first start). Losing it loses the stored passwords.
pub fn secret_box(settings: &Settings) -> Result<switchboard_engine::telephony::SecretBox> {
    use switchboard_engine::telephony::SecretBox;
    match &settings.secret_key {
        Some(hex) => SecretBox::from_hex(hex).context("secret_key"),
        None => {
            let path = settings.data_dir.join("secret_key");
            SecretBox::load_or_create(&path)
                .with_context(|| format!("secret key in {}", path.display()))
        }
    }
}

/// The SIP endpoint's settings: bind, and the address advertised in Via and Contact (the
/// configured one; for a wildcard bind, the local address the OS would use for the default
/// route, found with an unconnected-then-connected UDP socket that sends nothing).
pub fn sip_endpoint(settings: &Settings) -> Option<switchboard_engine::telephony::EndpointConfig> {
    let bind = settings.sip_bind?;
    let mut config = switchboard_engine::telephony::EndpointConfig::new(bind);
    config.advertised = settings.sip_public_addr.or_else(|| {
        if !bind.ip().is_unspecified() {
            return None;
        }
        let probe = std::net::UdpSocket::bind((bind.ip(), 0)).ok()?;
        // A documentation address (RFC 5737): connect() only picks the route; nothing is sent.
        probe.connect(("192.0.2.1", 5060)).ok()?;
        let ip = probe.local_addr().ok()?.ip();
        tracing::warn!(%ip, "sip_bind is a wildcard and sip_public_addr is not set: advertising the default route's address");
        Some(SocketAddr::new(ip, bind.port()))
    });
    Some(config)
}

fn default_db_url(data_dir: &Path) -> String {
    format!("sqlite://{}/switchboard.db", data_dir.display())
}

/// The configured secret, else the one in `<data_dir>/jwt_secret`, else a new random one
/// written there (owner-only permissions) with a warning.
pub fn jwt_secret(settings: &Settings) -> Result<Vec<u8>> {
    if let Some(s) = &settings.jwt_secret {
        if s.len() < 32 {
            bail!("jwt_secret must be at least 32 characters");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = settings.data_dir.join("jwt_secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() >= 32 {
            return Ok(s.as_bytes().to_vec());
        }
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &hex).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(path = %path.display(), "no jwt_secret configured: generated one; set SWITCHBOARD_JWT_SECRET to share it between instances");
    Ok(hex.into_bytes())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_file() {
        let s = resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(s.http, "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://./data/switchboard.db");
        assert_eq!(s.rate_limit_per_user, 100);
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("sb-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:4000\"\ndata_dir = \"/tmp/x\"\nrate_limit_per_user = 7\n",
        )
        .unwrap();
        let common = CommonArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = resolve(
            &common,
            &ServeArgs {
                http: Some("127.0.0.1:5000".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.http, "127.0.0.1:5000");
        assert_eq!(s.rate_limit_per_user, 7);
        assert_eq!(s.database_url, "sqlite:///tmp/x/switchboard.db");
        std::fs::write(&file, "htp = 1\n").unwrap();
        let err = resolve(&common, &ServeArgs::default()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rtp_port_range() {
        let s = resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(s.rtp_ports, (10000, 20000));
        let with = |v: &str| ServeArgs {
            rtp_ports: Some(v.into()),
            ..Default::default()
        };
        let s = resolve(&CommonArgs::default(), &with(" 30000 - 30999 ")).unwrap();
        assert_eq!(s.rtp_ports, (30000, 30999));
        for bad in ["30000", "2000-1000", "80-9000", "a-b", "10000-70000"] {
            let err = resolve(&CommonArgs::default(), &with(bad)).unwrap_err();
            assert!(format!("{err:#}").contains("rtp_ports"), "{bad}: {err:#}");
        }
    }

    #[test]
    fn sip_bind_public_addr_and_secret_key() {
        let s = resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(s.sip_bind, Some("0.0.0.0:5060".parse().unwrap()));
        let serve = |bind: &str, public: Option<&str>| ServeArgs {
            sip_bind: Some(bind.into()),
            sip_public_addr: public.map(Into::into),
            ..Default::default()
        };
        let s = resolve(&CommonArgs::default(), &serve("off", None)).unwrap();
        assert_eq!(s.sip_bind, None);
        assert!(sip_endpoint(&s).is_none());
        let s = resolve(
            &CommonArgs::default(),
            &serve("127.0.0.1:5070", Some("127.0.0.9")),
        )
        .unwrap();
        let ep = sip_endpoint(&s).unwrap();
        assert_eq!(ep.bind, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(ep.advertised, Some("127.0.0.9:5070".parse().unwrap()));
        let s = resolve(&CommonArgs::default(), &serve("127.0.0.1:5070", None)).unwrap();
        assert_eq!(
            sip_endpoint(&s).unwrap().advertised,
            None,
            "a concrete bind advertises itself"
        );
        for bad in [
            serve("5060", None),
            serve("0.0.0.0:5060", Some("sip.example.com")),
        ] {
            assert!(resolve(&CommonArgs::default(), &bad).is_err());
        }

        let dir = std::env::temp_dir().join(format!("sb-secret-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = resolve(
            &CommonArgs {
                data_dir: Some(dir.clone()),
                ..Default::default()
            },
            &ServeArgs::default(),
        )
        .unwrap();
        let sealed = secret_box(&s).unwrap().seal("c", "pw");
        assert_eq!(
            secret_box(&s).unwrap().open("c", &sealed).unwrap(),
            "pw",
            "the generated key is kept"
        );
        s.secret_key = Some("ab".repeat(32));
        assert!(
            secret_box(&s).unwrap().open("c", &sealed).is_err(),
            "a configured key wins"
        );
        s.secret_key = Some("short".into());
        assert!(secret_box(&s).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn generated_secret_is_kept() {
        let dir = std::env::temp_dir().join(format!("sb-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = resolve(
            &CommonArgs {
                data_dir: Some(dir.clone()),
                ..Default::default()
            },
            &ServeArgs::default(),
        )
        .unwrap();
        let a = jwt_secret(&s).unwrap();
        let b = jwt_secret(&s).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        std::fs::remove_dir_all(&dir).ok();
    }
}
