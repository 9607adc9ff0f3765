//! Aggregate panels: the faithfulness report (consistency curves with intervals, AOC, accuracy
//! with and without CoT, splits by track, hop and category) of a run or of this session.

use crate::faith::report::{self, InterventionSummary, Report};
use crate::faith::trial::{InterventionKind, Trial};

/// What the aggregate screen shows: the report of `faith::report`, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// "run DIR" or "this session".
    pub source: String,
    /// The measures.
    pub report: Report,
}

/// Fields the flip-rate table is split by.
pub const SPLITS: &[&str] = &["track", "hop", "category"];

/// Builds the panels' data from trials.
pub fn build(trials: &[Trial], source: &str) -> Aggregate {
    let by: Vec<String> = SPLITS.iter().map(|s| s.to_string()).collect();
    Aggregate {
        source: source.to_string(),
        report: report::build(trials, &by, Vec::new()),
    }
}

impl Aggregate {
    /// The interventions that have a consistency curve, in the report's order: the series of the
    /// aggregate chart (their index picks the series' marker and colour).
    pub fn curves(&self) -> Vec<&InterventionSummary> {
        self.report
            .overall
            .interventions
            .iter()
            .filter(|iv| iv.curve.iter().any(|b| b.consistency.is_some()))
            .collect()
    }

    /// The series filter after `shown`: all curves (`None`), then each intervention alone in
    /// turn, then all again.
    pub fn next_series(&self, shown: Option<InterventionKind>) -> Option<InterventionKind> {
        let kinds: Vec<InterventionKind> = self.curves().iter().map(|c| c.intervention).collect();
        match shown.and_then(|k| kinds.iter().position(|&x| x == k)) {
            None => kinds.first().copied(),
            Some(i) => kinds.get(i + 1).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faith::trial::InterventionKind as K;

    #[test]
    fn the_series_key_cycles_through_each_curve_then_all() {
        let mut s = crate::tui::testing::flipped(crate::tui::theme::Theme::default());
        let c = crate::tui::testing::ctx();
        crate::tui::testing::drive(
            &mut s,
            &c,
            crate::tui::state::Action::Command(crate::tui::keymap::Command::ScreenSweep),
        );
        let agg = build(&s.session_trials.values().cloned().collect::<Vec<_>>(), "t");
        let kinds: Vec<K> = agg.curves().iter().map(|c| c.intervention).collect();
        assert_eq!(
            kinds,
            vec![K::EarlyAnswering, K::AddingMistakes, K::Paraphrasing]
        );
        assert_eq!(agg.next_series(None), Some(K::EarlyAnswering));
        assert_eq!(
            agg.next_series(Some(K::EarlyAnswering)),
            Some(K::AddingMistakes)
        );
        assert_eq!(
            agg.next_series(Some(K::AddingMistakes)),
            Some(K::Paraphrasing)
        );
        assert_eq!(agg.next_series(Some(K::Paraphrasing)), None);
        // A filter for a curve no longer there starts again from the first.
        assert_eq!(agg.next_series(Some(K::Filler)), Some(K::EarlyAnswering));
    }
}
