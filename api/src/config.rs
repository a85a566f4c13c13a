//! The node's configuration: defaults, an optional TOML file, then flags and
//! environment variables (the binary merges them; this crate only sees the result).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./ccnode-data";
/// Default listen address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default node name.
pub const DEFAULT_NAME: &str = "ccnode";
/// Default seconds a validated (unconfirmed) transaction lives, as in the reference's node.ini.
pub const DEFAULT_VALIDATED_WINDOW_SECONDS: u64 = 300;
/// Default seconds a client has to send a request's headers (also the most a
/// kept-alive connection may sit idle).
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 10;
/// Default seconds a client has to send a request's body, from its headers.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
/// Default most connections open at once; further ones wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default limits of accounts opened without explicit ones, in whole units (`default_min`, `default_max`).
pub const DEFAULT_LIMIT_UNITS: (i64, i64) = (-100, 100);
/// Default store of the journal: segment files in the data directory.
pub const DEFAULT_STORE: &str = "file";

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the journal and the derived store live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// This node's name (the last segment of its absolute path).
    pub name: String,
    /// Key of the `admin` account, created at first start if given.
    pub admin_key: Option<String>,
    /// Seconds before a validated transaction expires.
    pub validated_window_seconds: u64,
    /// Whether transactions of zero are allowed.
    pub zero_payments: bool,
    /// Whether pending transactions count toward limit checks.
    pub validate_pending: bool,
    /// Default limits of new accounts.
    pub default_min: String,
    /// Default upper limit of new accounts.
    pub default_max: String,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body.
    pub body_timeout_seconds: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Origins whose pages may call the node from a browser; empty (or `*`): any.
    pub cors_origins: Vec<String>,
    /// Where the journal lives: `file` (the data directory) or a `postgres://` URL.
    pub store: String,
    /// With a PostgreSQL store: wait while another node holds the writer lock.
    pub standby: bool,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            name: DEFAULT_NAME.to_owned(),
            admin_key: None,
            validated_window_seconds: DEFAULT_VALIDATED_WINDOW_SECONDS,
            zero_payments: false,
            validate_pending: true,
            default_min: DEFAULT_LIMIT_UNITS.0.to_string(),
            default_max: DEFAULT_LIMIT_UNITS.1.to_string(),
            header_timeout_seconds: DEFAULT_HEADER_TIMEOUT_SECONDS,
            body_timeout_seconds: DEFAULT_BODY_TIMEOUT_SECONDS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cors_origins: Vec::new(),
            store: DEFAULT_STORE.to_owned(),
            standby: false,
        }
    }
}

/// The TOML file: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// See `NodeConfig::data_dir`.
    pub data: Option<PathBuf>,
    /// See `NodeConfig::listen`.
    pub listen: Option<SocketAddr>,
    /// See `NodeConfig::name`.
    pub name: Option<String>,
    /// See `NodeConfig::admin_key`.
    pub admin_key: Option<String>,
    /// See `NodeConfig::validated_window_seconds`.
    pub validated_window_seconds: Option<u64>,
    /// See `NodeConfig::zero_payments`.
    pub zero_payments: Option<bool>,
    /// See `NodeConfig::validate_pending`.
    pub validate_pending: Option<bool>,
    /// See `NodeConfig::default_min`.
    pub default_min: Option<String>,
    /// See `NodeConfig::default_max`.
    pub default_max: Option<String>,
    /// See `NodeConfig::header_timeout_seconds`.
    pub header_timeout_seconds: Option<u64>,
    /// See `NodeConfig::body_timeout_seconds`.
    pub body_timeout_seconds: Option<u64>,
    /// See `NodeConfig::max_connections`.
    pub max_connections: Option<usize>,
    /// See `NodeConfig::cors_origins`.
    pub cors_origins: Option<Vec<String>>,
    /// See `NodeConfig::store`.
    pub store: Option<String>,
    /// See `NodeConfig::standby`.
    pub standby: Option<bool>,
}

impl ConfigFile {
    /// Applies the file's values over `config`.
    pub fn apply(self, config: &mut NodeConfig) {
        if let Some(v) = self.data {
            config.data_dir = v;
        }
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.name {
            config.name = v;
        }
        if let Some(v) = self.admin_key {
            config.admin_key = Some(v);
        }
        if let Some(v) = self.validated_window_seconds {
            config.validated_window_seconds = v;
        }
        if let Some(v) = self.zero_payments {
            config.zero_payments = v;
        }
        if let Some(v) = self.validate_pending {
            config.validate_pending = v;
        }
        if let Some(v) = self.default_min {
            config.default_min = v;
        }
        if let Some(v) = self.default_max {
            config.default_max = v;
        }
        if let Some(v) = self.header_timeout_seconds {
            config.header_timeout_seconds = v;
        }
        if let Some(v) = self.body_timeout_seconds {
            config.body_timeout_seconds = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.cors_origins {
            config.cors_origins = v;
        }
        if let Some(v) = self.store {
            config.store = v;
        }
        if let Some(v) = self.standby {
            config.standby = v;
        }
    }
}
