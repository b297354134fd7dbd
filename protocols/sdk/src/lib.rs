//! The library every oxr process is built on.
//!
//! - [`process`]: the entry point (common arguments, run directory, logging, serving gRPC on
//!   the process's socket together with the generic `oxr.process.Process` show service,
//!   graceful shutdown).

pub mod process;

pub use process::{CommonArgs, ShowHandler, ShowOutput};
