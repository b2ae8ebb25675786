//! The restart delay sequence: `initial × factor^n`, capped at `max`, starting over once an
//! instance had stayed healthy for `reset_after` before it exited.

use std::time::Duration;

use crate::plan::Backoff;

/// Where an instance is in its backoff sequence.
#[derive(Debug, Clone)]
pub struct BackoffState {
    spec: Backoff,
    next: Duration,
}

impl BackoffState {
    pub fn new(spec: Backoff) -> Self {
        Self {
            spec,
            next: spec.initial,
        }
    }

    /// The delay before the next restart, given how long the instance had been healthy when it exited.
    pub fn next_delay(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= self.spec.reset_after {
            self.next = self.spec.initial;
        }
        let delay = self.next.min(self.spec.max);
        self.next = self.next.mul_f64(self.spec.factor).min(self.spec.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn grows_by_the_factor_up_to_the_cap() {
        let mut b = BackoffState::new(Backoff::default());
        let seq: Vec<u128> = (0..14).map(|_| b.next_delay(ms(0)).as_millis()).collect();
        assert_eq!(&seq[..5], &[100, 150, 225, 337, 506]);
        assert_eq!(*seq.last().unwrap(), 15_000, "{seq:?}");
        assert!(seq.windows(2).all(|w| w[0] <= w[1]), "{seq:?}");
    }

    #[test]
    fn starts_over_after_a_healthy_stretch() {
        let mut b = BackoffState::new(Backoff::default());
        for _ in 0..6 {
            b.next_delay(ms(10));
        }
        assert!(b.next_delay(ms(10)) > ms(1000));
        assert_eq!(b.next_delay(Duration::from_secs(31)), ms(100));
        assert_eq!(b.next_delay(ms(10)), ms(150));
    }
}
