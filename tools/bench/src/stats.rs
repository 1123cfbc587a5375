//! Samples of a measure and their percentiles.

use std::time::Duration;

/// Samples in microseconds, sorted.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    /// Sorts `values` (microseconds).
    pub fn new(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Self(values)
    }

    /// From durations.
    pub fn of(durations: &[Duration]) -> Self {
        Self::new(durations.iter().map(|d| d.as_micros() as u64).collect())
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`th percentile (nearest rank), in microseconds; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The median.
    pub fn median(&self) -> u64 {
        self.percentile(50.0)
    }

    /// The largest.
    pub fn max(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples = Samples::new((1..=100).rev().collect());
        assert_eq!(samples.median(), 50);
        assert_eq!(samples.percentile(99.0), 99);
        assert_eq!(samples.max(), 100);
        assert_eq!(Samples::new(vec![7]).percentile(99.0), 7);
        assert_eq!(Samples::default().median(), 0);
    }
}
