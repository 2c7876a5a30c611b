//! Small general helpers that every subsystem may use and that know nothing
//! of sales: diagnostics, atomic file writes, randomness, durations, the one
//! HTTP client, the Prometheus text format, and the lock-poison policy.

pub(crate) mod clock;
pub(crate) mod cookie;
pub(crate) mod diag;
pub(crate) mod duration;
pub(crate) mod fd;
pub(crate) mod fs;
pub(crate) mod html;
pub(crate) mod http;
pub(crate) mod prometheus;
pub(crate) mod random;
pub(crate) mod shutdown;
pub(crate) mod sync;
#[cfg(test)]
pub(crate) mod wait;

/// The innermost error message of a chain, which is the one that says what
/// happened ("connection refused", not "client error").
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        last = e.to_string();
        cur = e.source();
    }
    last
}
