//! Rows split into multi-row statements of a few fixed sizes.
//!
//! A connection prepares each distinct SQL text once and keeps it (sqlx's statement cache).
//! A statement's text depends on its number of rows, so splitting a group's rows into runs of
//! the largest size and one run for the rest made a new text, prepared anew and cached, for
//! almost every group: preparing a statement of a thousand rows costs SQLite about as much as
//! running it, and a long import filled each connection's cache with a hundred of them. Here
//! the rest is split into powers of two, so a connection meets at most one text per size: the
//! largest and each power of two below it.

/// `rows` in runs of `largest` rows, then the rest in runs of the powers of two its length
/// is made of, largest first.
pub(crate) fn statement_batches<T>(rows: &[T], largest: usize) -> impl Iterator<Item = &[T]> {
    let largest = largest.max(1);
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= largest { largest } else { 1 << rest.len().ilog2() };
        let (batch, after) = rest.split_at(size);
        rest = after;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn batches_cover_the_rows_in_order_in_few_sizes() {
        for largest in [1, 2, 7, 300, 1000] {
            let mut sizes = BTreeSet::new();
            for length in 0..2500 {
                let rows: Vec<usize> = (0..length).collect();
                let batches: Vec<&[usize]> = statement_batches(&rows, largest).collect();
                assert_eq!(batches.concat(), rows, "{length} rows, batches of {largest}");
                for batch in &batches {
                    assert!(batch.len() == largest || (batch.len() < largest && batch.len().is_power_of_two()));
                    sizes.insert(batch.len());
                }
                // At most one run below the largest size for each power of two.
                let short = batches.iter().filter(|batch| batch.len() < largest).count();
                assert!(short <= (usize::BITS - largest.leading_zeros()) as usize, "{length} rows: {short} short runs");
            }
            assert!(sizes.len() <= 1 + largest.ilog2() as usize + 1, "batches of {largest}: sizes {sizes:?}");
        }
    }
}
