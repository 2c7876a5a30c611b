//! Randomness from the operating system's generator.

/// `n` random bytes as lowercase hex.
pub(crate) fn hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill(&mut buf);
    hex::encode(buf)
}

/// A random number in `0..n` (0 when `n` is 0). Slightly biased for huge `n`,
/// which jitter does not mind.
pub(crate) fn below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b) % n.max(1)
}

/// Fills `buf`; the process cannot go on without a random generator.
pub(crate) fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random generator failed");
}
