//! Medians and interquartile ranges of a figure's per-round samples.

/// A sample's median and quartiles (linear interpolation between order statistics, as R's
/// default and numpy's `percentile`), and how many rounds it has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
}

impl Stat {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Stat> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Stat {
            median: quantile(&v, 0.5),
            q1: quantile(&v, 0.25),
            q3: quantile(&v, 0.75),
            n: v.len(),
        })
    }

    /// Whether the two interquartile ranges share a point.
    pub fn overlaps(&self, other: &Stat) -> bool {
        self.q1 <= other.q3 && other.q1 <= self.q3
    }
}

/// The `p` quantile of sorted `v` (not empty).
fn quantile(v: &[f64], p: f64) -> f64 {
    let h = (v.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quartiles() {
        let s = Stat::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3, s.n), (3.0, 2.0, 4.0, 5));
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3), (2.5, 1.75, 3.25));
        let one = Stat::of(&[7.0]).unwrap();
        assert_eq!((one.median, one.q1, one.q3), (7.0, 7.0, 7.0));
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn overlap_of_interquartile_ranges() {
        let a = Stat { median: 2.0, q1: 1.0, q3: 3.0, n: 4 };
        let b = Stat { median: 4.0, q1: 3.0, q3: 5.0, n: 4 };
        let c = Stat { median: 6.0, q1: 5.5, q3: 7.0, n: 4 };
        assert!(a.overlaps(&b) && b.overlaps(&a), "touching ranges overlap");
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
        assert!(!b.overlaps(&c));
        assert!(a.overlaps(&a));
    }
}
