//! Ranking units on one indicator: best first by the indicator's direction, competition
//! ranking ("1224": equal values share a rank), units without data last, sharing one rank.

use std::cmp::Ordering;

use crate::figure::Direction;

/// Orders `entries` (a key and its value, if any) best first and gives each its rank. Ties
/// in value are ordered by key, so the answer is stable.
pub fn competition_ranks<K: Ord>(
    mut entries: Vec<(K, Option<f64>)>,
    direction: Direction,
) -> Vec<(usize, K, Option<f64>)> {
    entries.sort_by(|(key_a, a), (key_b, b)| match (a, b) {
        (Some(x), Some(y)) => {
            let better_first = match direction {
                Direction::Higher => y.total_cmp(x),
                Direction::Lower => x.total_cmp(y),
            };
            better_first.then_with(|| key_a.cmp(key_b))
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => key_a.cmp(key_b),
    });
    let with_data = entries.iter().filter(|(_, value)| value.is_some()).count();
    let mut ranked: Vec<(usize, K, Option<f64>)> = Vec::with_capacity(entries.len());
    for (index, (key, value)) in entries.into_iter().enumerate() {
        let rank = match ranked.last() {
            Some((rank, _, previous)) if *previous == value => *rank,
            _ if value.is_some() => index + 1,
            _ => with_data + 1,
        };
        ranked.push((rank, key, value));
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_a_rank_and_units_without_data_come_last() {
        let entries = vec![("a", Some(50.0)), ("b", None), ("c", Some(90.0)), ("d", Some(50.0)), ("e", None)];
        let ranked = competition_ranks(entries.clone(), Direction::Higher);
        let summary: Vec<(usize, &str)> = ranked.iter().map(|(rank, key, _)| (*rank, *key)).collect();
        assert_eq!(summary, vec![(1, "c"), (2, "a"), (2, "d"), (4, "b"), (4, "e")]);
        let lower = competition_ranks(entries, Direction::Lower);
        assert_eq!(
            lower.iter().map(|(r, k, _)| (*r, *k)).take(3).collect::<Vec<_>>(),
            vec![(1, "a"), (1, "d"), (3, "c")]
        );
    }
}
