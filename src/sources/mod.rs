//! The fetchers: each talks to one kind of Google endpoint through the shared client in `http`.

pub mod aws;
pub mod http;
pub mod iam;
pub mod metadata;
pub mod oauth;
pub mod sigv4;
pub mod sts;
