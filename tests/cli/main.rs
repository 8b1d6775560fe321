//! Integration tests: the real binary against httpmock servers standing in for Google, configured only
//! through the environment variables and files a user would use.

mod support;

mod metadata;

mod decode;
mod verify;
