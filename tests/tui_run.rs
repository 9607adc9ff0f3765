//! The inspector on a finished run directory: its chains are shown instead of sampling new ones
//! (no model needed), its flips mark the items, and the aggregate panels read its trials.

use faithscope::data::{load, LoadOptions};
use faithscope::faith::protocol::Protocol;
use faithscope::faith::run::{run_items, Manifest, RunStore, TRIALS};
use faithscope::faith::sweep::{Plan, Sweep};
use faithscope::faith::trial::read_trials;
use faithscope::tui::state::{start, ModelStatus};
use faithscope::tui::testing::Scripted;
use faithscope::tui::{aggregate, prepare, Options};

#[test]
fn run_directory_supplies_chains_marks_and_panels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ds = load(&root.join("samples"), &LoadOptions::default()).unwrap();
    let items = &ds.items[..2];
    let protocol = Protocol::builtin("paper-v1").unwrap();
    let manifest = Manifest {
        faithscope_version: "test".into(),
        created_unix: 0,
        model: "scripted".into(),
        model_name: "scripted".into(),
        served_model: None,
        adapter: None,
        quant: None,
        device: String::new(),
        dtype: String::new(),
        data: "samples".into(),
        data_format: "faithscope".into(),
        items: 2,
        protocol: protocol.clone(),
        interventions: "early".into(),
        mistake_source: "rules".into(),
        paraphrase_source: "model".into(),
        chains: 1,
        seed: 0,
        limit: None,
        shard: None,
    };
    let mut store = RunStore::create(&dir, &manifest).unwrap();
    let plan = Plan::parse("early").unwrap();
    let model = Scripted;
    let mut sweep = Sweep::new(&model, &protocol, &plan, 0, 1);
    run_items(&mut store, &mut sweep, items, false).unwrap();
    drop(store);

    let prepared = prepare(&Options {
        data: Some(root.join("samples")),
        run: vec![dir.clone()],
        protocol: Some("lanham".into()),
        annotations: Some(tmp.path().join("a.jsonl")),
        ..Options::default()
    })
    .unwrap();
    // The run's own protocol wins over --protocol.
    assert_eq!(prepared.protocol.name, "paper-v1");
    let mut s = prepared.state;
    if std::path::Path::new(faithscope::tui::DEMO_MODEL).exists() {
        s.model = ModelStatus::None("test without a model".into());
    }
    // Early answering with no sentence flips the scripted model's answer: both items marked.
    assert!(s.marks[&items[0].id].flipped);
    assert!(s.marks[&items[1].id].flipped);
    let fx = start(&mut s);
    assert_eq!(s.open, Some(0));
    assert_eq!(
        s.chain.sentences,
        vec![
            "I hear barking.",
            "The barking is loud and close.",
            "A cat would meow instead."
        ]
    );
    // The panels are asked for at start; they read the run's trials.
    assert!(fx
        .iter()
        .any(|e| matches!(e, faithscope::tui::state::Effect::Aggregate { .. })));
    let trials = read_trials(&dir.join(TRIALS)).unwrap();
    let agg = aggregate::build(&trials, "run");
    let early = agg
        .report
        .overall
        .interventions
        .iter()
        .find(|i| i.intervention.name() == "early_answering")
        .unwrap();
    // k = 0..=3 for two chains, of which k = 0 flips.
    assert_eq!(early.trials, 8);
    assert_eq!(early.consistency.unwrap().k, 6);
    assert!(early.aoc.is_some());
}
