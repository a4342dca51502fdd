//! Target tracking on average CPU, as EC2 Auto Scaling does it: scale out after
//! `out_periods` periods above the target, in after `in_periods` below 90 % of it, to
//! `ceil(current × metric / target)` within the group's bounds, with cooldowns. The
//! `aws` timing uses AWS's one-minute periods (3 datapoints out, 15 in); `fast` the same
//! rules in seconds.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::manifest::Timing as Profile;

/// The clock of scaling and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    pub profile: Profile,
    /// One metric datapoint.
    pub period: Duration,
    pub out_periods: u32,
    pub in_periods: u32,
    pub out_cooldown: Duration,
    pub in_cooldown: Duration,
}

impl Timing {
    pub fn of(profile: Profile) -> Timing {
        match profile {
            Profile::Aws => Timing {
                profile,
                period: Duration::from_secs(60),
                out_periods: 3,
                in_periods: 15,
                out_cooldown: Duration::from_secs(60),
                in_cooldown: Duration::from_secs(300),
            },
            Profile::Fast => Timing {
                profile,
                period: Duration::from_secs(1),
                out_periods: 3,
                in_periods: 5,
                out_cooldown: Duration::from_secs(2),
                in_cooldown: Duration::from_secs(3),
            },
        }
    }

    /// A health-check setting of the target group, as this profile runs it: as it is
    /// for `aws`, one second for `fast`.
    pub fn health_interval(&self, configured: Duration) -> Duration {
        match self.profile {
            Profile::Aws => configured,
            Profile::Fast => Duration::from_secs(1),
        }
    }

    /// The healthy/unhealthy threshold as this profile runs it.
    pub fn threshold(&self, configured: u32) -> u32 {
        match self.profile {
            Profile::Aws => configured,
            Profile::Fast => configured.min(2),
        }
    }

    pub fn deregistration_delay(&self, configured: Duration) -> Duration {
        match self.profile {
            Profile::Aws => configured,
            Profile::Fast => configured.min(Duration::from_secs(2)),
        }
    }
}

/// The state of one target-tracking policy.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub target: f64,
    pub min: u32,
    pub max: u32,
    above: u32,
    below: u32,
    last_change: Option<Instant>,
}

impl Tracker {
    pub fn new(target: f64, min: u32, max: u32) -> Tracker {
        Tracker {
            target,
            min,
            max,
            above: 0,
            below: 0,
            last_change: None,
        }
    }

    fn clamp(&self, n: u32) -> u32 {
        n.clamp(self.min, self.max.max(self.min))
    }

    /// One datapoint: the group's average CPU (percent) with `current` instances. The
    /// new desired count, when it changes.
    pub fn observe(&mut self, current: u32, cpu: f64, now: Instant, t: &Timing) -> Option<u32> {
        if current != self.clamp(current) {
            self.last_change = Some(now);
            return Some(self.clamp(current));
        }
        if cpu > self.target {
            self.above += 1;
            self.below = 0;
        } else if cpu < self.target * 0.9 {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        let since = self.last_change.map(|c| now.duration_since(c));
        let wanted = self.clamp((f64::from(current) * cpu / self.target).ceil() as u32);
        let out = self.above >= t.out_periods
            && since.is_none_or(|s| s >= t.out_cooldown)
            && wanted > current;
        let scale_in = self.below >= t.in_periods
            && since.is_none_or(|s| s >= t.in_cooldown)
            && wanted < current;
        let decision = (out || scale_in).then_some(wanted);
        if decision.is_some() {
            self.above = 0;
            self.below = 0;
            self.last_change = Some(now);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_out_after_three_periods_above_the_target_in_proportion() {
        let t = Timing::of(Profile::Fast);
        let mut tr = Tracker::new(70.0, 1, 5);
        let now = Instant::now();
        assert_eq!(tr.observe(1, 95.0, now, &t), None);
        assert_eq!(tr.observe(1, 95.0, now, &t), None);
        // ceil(1 × 95 / 70) = 2
        assert_eq!(tr.observe(1, 95.0, now, &t), Some(2));
        // Cooling down: no second step right away, even far above target.
        for _ in 0..3 {
            assert_eq!(tr.observe(2, 100.0, now, &t), None);
        }
        let later = now + t.out_cooldown;
        assert_eq!(tr.observe(2, 100.0, later, &t), Some(3));
    }

    #[test]
    fn never_leaves_the_bounds() {
        let t = Timing::of(Profile::Fast);
        let mut tr = Tracker::new(10.0, 1, 3);
        let now = Instant::now();
        for _ in 0..2 {
            tr.observe(1, 100.0, now, &t);
        }
        assert_eq!(
            tr.observe(1, 100.0, now, &t),
            Some(3),
            "ceil(10) capped at max"
        );
        assert_eq!(
            tr.observe(0, 0.0, now, &t),
            Some(1),
            "below min: back to min at once"
        );
    }

    #[test]
    fn scales_in_only_after_the_longer_quiet_spell() {
        let t = Timing::of(Profile::Aws);
        let mut tr = Tracker::new(70.0, 1, 5);
        let start = Instant::now();
        for i in 0..14 {
            assert_eq!(
                tr.observe(3, 5.0, start + t.period * i, &t),
                None,
                "period {i}"
            );
        }
        assert_eq!(tr.observe(3, 5.0, start + t.period * 14, &t), Some(1));
        // A datapoint near the target resets the count.
        let mut tr = Tracker::new(70.0, 1, 5);
        for i in 0..20 {
            let cpu = if i % 10 == 9 { 66.0 } else { 5.0 };
            assert_eq!(tr.observe(3, cpu, start + t.period * i, &t), None);
        }
    }
}
