//! The embedded samples and demo models are found from outside the checkout: the inspector's
//! defaults walk up from the binary (here the test binary under target/) to the repository's
//! samples/. In its own test binary because it changes the working directory.

mod common;

use faithscope::tui::{prepare, Options, DEMO_COMPARE, DEMO_MODEL};

#[test]
fn inspector_defaults_resolve_from_outside_the_checkout() {
    let outside = tempfile::tempdir().unwrap();
    std::env::set_current_dir(outside.path()).unwrap();
    let repo = std::fs::canonicalize(common::repo()).unwrap();
    let samples = faithscope::samples::samples_dir().expect("found above the binary");
    assert_eq!(
        std::fs::canonicalize(&samples).unwrap(),
        repo.join("samples")
    );

    let p = prepare(&Options::default()).expect("the demo setup opens from anywhere");
    let model = p.model.expect("the demo model");
    assert_eq!(
        std::fs::canonicalize(&model).unwrap(),
        repo.join(DEMO_MODEL),
        "{model}"
    );
    assert_eq!(p.protocol.name, "lanham", "the demo model's own protocol");
    assert_eq!(p.state.items.len(), 240, "samples/synth-test");
    assert!(
        p.state.dataset.ends_with("samples/synth-test"),
        "{}",
        p.state.dataset
    );
    assert_eq!(p.state.models.len(), 2);
    assert_eq!(
        std::fs::canonicalize(&p.state.models[1]).unwrap(),
        repo.join(DEMO_COMPARE)
    );
    // The items' clips resolve too (absolute, so playback works from here).
    assert!(p.state.items[0].audio.is_file());
}
