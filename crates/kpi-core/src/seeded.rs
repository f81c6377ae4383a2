//! The seeded generator of this crate's tests (xorshift): random cases that repeat exactly
//! from run to run, without a dependency. kpi-store's `test_support::SeededRng` serves the
//! crates above this one.

/// A generator of 64-bit numbers from `seed` (which must not be 0).
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
