//! Chat prompts rendered from the checkpoints' own templates (model::chat_template) equal
//! transformers' `apply_chat_template` (fixtures written by tools/chat_template_refs.py), and so
//! does faithscope's built-in Qwen2-Audio prompt (model::prompt::render).

mod common;

use faithscope::model::chat_template::ChatTemplate;
use faithscope::model::config::Arch;
use faithscope::model::{prompt, Conversation, Message, Role};
use serde_json::Value;

fn conversation(case: &Value) -> Conversation {
    let c = &case["conversation"];
    Conversation {
        audio: c["audio"].as_bool().unwrap().then(|| "clip.wav".into()),
        messages: c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message {
                role: match m["role"].as_str().unwrap() {
                    "system" => Role::System,
                    "user" => Role::User,
                    _ => Role::Assistant,
                },
                text: m["text"].as_str().unwrap().to_string(),
            })
            .collect(),
        prefill: c["prefill"].as_str().map(str::to_string),
    }
}

#[test]
fn templates_render_as_transformers_does() {
    let repo = common::repo();
    for (name, folder) in [
        ("demo-faithful", repo.join("samples/models/demo-faithful")),
        ("tiny-a", repo.join("tests/fixtures/qwen2_audio/tiny-a")),
    ] {
        let fixture = repo.join(format!("tests/fixtures/chat_templates/{name}.json"));
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
        assert!(cases.len() >= 6);
        let t = ChatTemplate::from_folder(&folder)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: no chat template"));
        for (i, case) in cases.iter().enumerate() {
            let conv = conversation(case);
            let want = case["text"].as_str().unwrap();
            assert_eq!(t.render(&conv).unwrap(), want, "{name} case {i} (template)");
            assert_eq!(
                prompt::render(&conv).unwrap(),
                want,
                "{name} case {i} (built in)"
            );
        }
    }
}

#[test]
fn audio_flamingo_and_omni_templates_render_as_transformers_does() {
    let repo = common::repo();
    for (name, arch) in [
        ("af3-tiny", Arch::AudioFlamingo3),
        ("omni-thinker-tiny", Arch::Qwen25Omni),
    ] {
        let folder = repo.join("tests/fixtures/af3_omni").join(name);
        let fixture = repo.join(format!("tests/fixtures/chat_templates/{name}.json"));
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
        assert!(cases.len() >= 6);
        let own = ChatTemplate::from_folder(&folder)
            .unwrap()
            .unwrap()
            .for_arch(arch);
        // the built-in fallback is the published template, so it renders the same
        let builtin = ChatTemplate::builtin(arch);
        for (i, case) in cases.iter().enumerate() {
            let conv = conversation(case);
            let want = case["text"].as_str().unwrap();
            assert_eq!(own.render(&conv).unwrap(), want, "{name} case {i} (folder)");
            assert_eq!(
                builtin.render(&conv).unwrap(),
                want,
                "{name} case {i} (built in)"
            );
        }
    }
    // and the built-in Qwen2-Audio template is the one the demo folders carry
    let demo = repo.join("tests/fixtures/chat_templates/demo-faithful.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    let builtin = ChatTemplate::builtin(Arch::Qwen2Audio);
    for case in &cases {
        assert_eq!(
            builtin.render(&conversation(case)).unwrap(),
            case["text"].as_str().unwrap()
        );
    }
}

#[test]
fn a_template_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "{{ raise_exception('only user turns, please') }}",
    )
    .unwrap();
    let t = ChatTemplate::from_folder(dir.path()).unwrap().unwrap();
    let conv = Conversation {
        audio: None,
        messages: vec![Message {
            role: Role::User,
            text: "hi".into(),
        }],
        prefill: None,
    };
    let e = t.render(&conv).unwrap_err().to_string();
    assert!(
        e.contains("chat_template.jinja") && e.contains("only user turns"),
        "{e}"
    );
    assert!(ChatTemplate::from_folder(&dir.path().join("nothing"))
        .unwrap()
        .is_none());
}
