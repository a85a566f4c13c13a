//! ccnode's HTTP layer and node runtime.

pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod runtime;
