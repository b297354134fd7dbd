//! The `fastpath` backend: programs oxr-fastpath through `proto/dataplane.proto`. Not built
//! yet (issue 7); opening it fails with a clear error so a config asking for it is refused
//! at start rather than silently forwarding nothing.

use ipnet::IpNet;

use super::{BackendError, BackendOptions, BackendStatus, FibBackend, FibOp, Route};

/// Placeholder for the fast-path plugin client.
#[derive(Debug)]
pub struct FastpathBackend {
    _private: (),
}

impl FastpathBackend {
    /// Always fails until the fast path exists.
    pub fn open(_opts: &BackendOptions) -> Result<Self, BackendError> {
        Err(BackendError::NotImplemented(
            "fastpath (the oxr-fastpath plugin is issue 7; use `kernel` or `none`)",
        ))
    }
}

impl FibBackend for FastpathBackend {
    fn name(&self) -> &'static str {
        "fastpath"
    }
    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>> {
        ops.iter()
            .map(|_| Err("fastpath backend not implemented".to_string()))
            .collect()
    }
    fn load_existing(&mut self) -> Result<usize, BackendError> {
        Ok(0)
    }
    fn routes(&self) -> Vec<Route> {
        Vec::new()
    }
    fn get(&self, _prefix: &IpNet) -> Option<Route> {
        None
    }
    fn prefixes(&self) -> Vec<IpNet> {
        Vec::new()
    }
    fn status(&self) -> BackendStatus {
        BackendStatus {
            backend: "fastpath".into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_fails_with_a_clear_error() {
        let err = FastpathBackend::open(&BackendOptions::default()).unwrap_err();
        assert!(err.to_string().contains("issue 7"), "{err}");
    }
}
