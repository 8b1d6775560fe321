//! Integration tests: the real binary against httpmock servers standing in for Google, configured only
//! through the environment variables and files a user would use.

mod support;

mod bounded;
mod cache;
mod chain;
mod decode;
mod external_account;
mod faults;
mod gcloud;
mod generated;
mod hardening;
mod impersonate;
mod metadata;
mod print_identity_token;
mod universe;
mod verify;
