//! Faithfulness: chains, sentence split, interventions, answer forcing, measures, runs, reports.

pub mod answer;
pub mod audio;
pub mod intervene;
pub mod measures;
pub mod mistakes;
pub mod paper;
pub mod perturb;
pub mod plot;
pub mod prefetch;
pub mod protocol;
pub mod report;
pub mod run;
pub mod shards;
pub mod split;
pub mod sweep;
pub mod trial;
