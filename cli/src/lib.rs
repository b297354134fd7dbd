//! oxrsh, the shell of an oxr virtual router: operational commands routed to the processes
//! that declared them (`Process.Describe` / `Process.Show`), configure mode editing
//! oxr-routerd's candidate by path, Tab completion and `?` help from the command tree and the
//! configuration schema.
//!
//! ```text
//!  rustyline loop (repl) ──line──> run_command (shell) ──> resolve (complete)
//!        │ Tab / ?                      │  show X ──> Process.Show on the declaring socket
//!        v                              │  set/delete ──> schema_walk ──> Routerd.Set/Delete
//!  complete::complete / help_text       └─ commit/rollback/compare ──> Routerd
//! ```

pub mod complete;
pub mod line;
pub mod repl;
pub mod schema_walk;
pub mod shell;

pub use shell::{run_command, Context, ShellError};
