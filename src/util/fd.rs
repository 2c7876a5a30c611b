//! The process's open-file limit: a gate holds one descriptor per
//! connection, and the soft limit most services start with (1,024 under
//! systemd, 256 elsewhere) is far below what a sale's spike brings.

/// Raises the soft limit on open files to the hard limit (at most `cap`);
/// returns the limits before and after.
pub(crate) fn raise_open_files(cap: u64) -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // rlim_t is u64 on the targets this runs on.
    let before: u64 = lim.rlim_cur;
    let want = lim.rlim_max.min(cap).max(before);
    if want > before {
        lim.rlim_cur = want;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, want))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_only_goes_up() {
        let (before, after) = super::raise_open_files(1 << 20).unwrap();
        assert!(after >= before);
        let (again, same) = super::raise_open_files(1).unwrap();
        assert_eq!((again, same), (after, after), "never lowered");
    }
}
