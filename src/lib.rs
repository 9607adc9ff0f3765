//! faithscope: a terminal inspector for chain-of-thought faithfulness in audio-language models.
//!
//! Data flows one way: source files -> [`data`] items -> [`audio`] features -> [`model`] calls ->
//! [`faith`] trials and measures -> views and exports.

pub mod audio;
pub mod cli;
pub mod data;
pub mod faith;
pub mod model;
pub mod par;
pub mod samples;
pub mod serve;
pub mod synth;
pub mod train;
pub mod tui;
pub mod warn;
