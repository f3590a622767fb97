//! Whether the API answered: pure, so that a change is logged once, not once per retry.

/// The last known reachability of the API (unknown until the first request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reachability {
    known: Option<bool>,
}

impl Reachability {
    /// Records one request's result; returns `Some(reachable)` when it changed (log and show it).
    pub fn observe(&mut self, reachable: bool) -> Option<bool> {
        if self.known == Some(reachable) {
            return None;
        }
        self.known = Some(reachable);
        Some(reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_result_is_a_change() {
        assert_eq!(Reachability::default().observe(false), Some(false));
    }

    #[test]
    fn repeated_failures_are_reported_once() {
        let mut r = Reachability::default();
        r.observe(false);
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(true), Some(true));
        assert_eq!(r.observe(true), None);
    }
}
