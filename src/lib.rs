//! idtok as a library: the modules behind the binary, exposed so that fuzz targets and property tests can
//! reach the parsers. The command line (`src/main.rs`) is the product; this API is not stable.

pub mod cache;
pub mod cli;
pub mod credentials;
pub mod decode;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod generate;
pub mod log;
pub mod output;
pub mod run;
pub mod settings;
pub mod sources;
pub mod token;
pub mod verify;
