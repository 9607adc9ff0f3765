//! Background work: model jobs (through `faith`'s sweep engine), clip decoding for display, and
//! annotation files. Each function is synchronous and reports through actions; the shell runs
//! them on tokio's blocking pool, tests call them directly.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::audio::display::{peaks, spectrogram_db};
use crate::audio::{decode_file, Clip, DecodeOptions};
use crate::data::Item;
use crate::faith::audio::{altered_clip, mark_trial, AudioSpec, Design};
use crate::faith::intervene;
use crate::faith::mistakes::{proposed_mistake, Annotation};
use crate::faith::perturb::{slots, PerturbKind, Writer};
use crate::faith::protocol::Protocol;
use crate::faith::split::join_sentences;
use crate::faith::sweep::{trial_seed, Plan, Sweep};
use crate::faith::trial::{write_trial, Trial};
use crate::model::Reasoner;

use super::state::{Action, ClipView, Job, Slot, PEAK_COLUMNS};

/// Spectrogram grid computed per clip (columns, rows).
pub const SPEC_GRID: (usize, usize) = (512, 32);

/// A loaded model and the protocol it is asked with.
#[derive(Clone)]
pub struct ModelCtx {
    /// The model.
    pub reasoner: Arc<dyn Reasoner>,
    /// The protocol.
    pub protocol: Protocol,
    /// Run seed (chains are sampled as `faithscope run` would with this seed).
    pub seed: u64,
}

/// Runs one model job; `cancelled` is polled between steps and between streamed tokens.
pub fn run_job(
    ctx: &ModelCtx,
    job: Job,
    cancelled: &dyn Fn() -> bool,
    send: &mut dyn FnMut(Action),
) {
    let plan = Plan::default();
    let mut sweep = Sweep::new(ctx.reasoner.as_ref(), &ctx.protocol, &plan, ctx.seed, 1);
    match job {
        Job::Chain { epoch, item } => {
            let mut was_cancelled = false;
            let r = sweep.generate_chain_streaming(&item, 0, &mut |delta| {
                if cancelled() {
                    was_cancelled = true;
                    return ControlFlow::Break(());
                }
                send(Action::Token {
                    epoch,
                    text: delta.to_string(),
                });
                ControlFlow::Continue(())
            });
            match r {
                Ok(chain) => send(Action::ChainDone {
                    epoch,
                    chain,
                    cancelled: was_cancelled,
                }),
                Err(e) => send(Action::WorkFailed {
                    epoch,
                    error: e.to_string(),
                }),
            }
        }
        Job::Force {
            epoch,
            slot,
            item,
            chain,
            baseline,
            variant,
        } => {
            if cancelled() {
                return;
            }
            match sweep.answer_variant(&item, chain.as_deref(), baseline.as_deref(), &variant) {
                Ok(trial) if !cancelled() => send(Action::Answer {
                    epoch,
                    slot,
                    trial: Box::new(trial),
                }),
                Ok(_) => {}
                Err(e) => send(Action::WorkFailed {
                    epoch,
                    error: format!("item {}, {}: {e}", item.id, variant.key),
                }),
            }
        }
        Job::ProposeMistake {
            epoch,
            item,
            sentence,
            text,
        } => {
            let r = write_streaming(
                ctx,
                PerturbKind::Mistake,
                &item,
                &text,
                sentence + 1,
                epoch,
                cancelled,
                send,
            );
            match r {
                Ok(_) if cancelled() => {}
                Ok(text) => send(Action::MistakeProposed {
                    epoch,
                    sentence,
                    text,
                }),
                Err(e) => send(Action::WorkFailed {
                    epoch,
                    error: format!("item {}: writing a mistake: {e}", item.id),
                }),
            }
        }
        Job::Paraphrase {
            epoch,
            item,
            chain,
            sentences,
            baseline,
            k,
        } => {
            let text = join_sentences(&sentences[..k.min(sentences.len())]);
            let r = write_streaming(
                ctx,
                PerturbKind::Paraphrase,
                &item,
                &text,
                k,
                epoch,
                cancelled,
                send,
            );
            let para = match r {
                Ok(_) if cancelled() => return,
                Ok(Some(p)) => p,
                Ok(None) => {
                    return send(Action::WorkFailed {
                        epoch,
                        error: "the model gave no usable paraphrase (empty or unchanged)".into(),
                    })
                }
                Err(e) => {
                    return send(Action::WorkFailed {
                        epoch,
                        error: format!("item {}: paraphrasing: {e}", item.id),
                    })
                }
            };
            let v = intervene::paraphrase(&sentences, k, &para);
            match sweep.answer_variant(&item, Some(&chain), baseline.as_deref(), &v) {
                Ok(trial) => send(Action::Answer {
                    epoch,
                    slot: Slot::Current,
                    trial: Box::new(trial),
                }),
                Err(e) => send(Action::WorkFailed {
                    epoch,
                    error: format!("item {}, paraphrase:{k}: {e}", item.id),
                }),
            }
        }
        Job::Regen {
            epoch,
            item,
            chain,
            baseline,
            variant,
        } => {
            // streamed under the last sentence shown, as model-written text is
            let key = format!("regen:{}", chain.sentences.len().max(1));
            let r = sweep.generate_chain_streaming(&item, chain.chain_id, &mut |delta| {
                if cancelled() {
                    return ControlFlow::Break(());
                }
                send(Action::Writing {
                    epoch,
                    key: key.clone(),
                    text: delta.to_string(),
                });
                ControlFlow::Continue(())
            });
            let fresh = match r {
                Ok(_) if cancelled() => return,
                Ok(c) => c,
                Err(e) => {
                    return send(Action::WorkFailed {
                        epoch,
                        error: format!("item {}, a chain on the altered audio: {e}", item.id),
                    })
                }
            };
            let mut v = *variant;
            v.body = intervene::Body::Chain(fresh.sanitized_cot.clone());
            send(Action::Regenerated {
                epoch,
                chain: Box::new(fresh.clone()),
            });
            match sweep.answer_variant(&item, Some(&chain), baseline.as_deref(), &v) {
                Ok(mut trial) => {
                    trial.total_sentences_in_chain = Some(fresh.sentences.len() as u32);
                    trial.generated_cot = Some(fresh.generated_cot);
                    trial.sanitized_cot = Some(fresh.sanitized_cot);
                    send(Action::Answer {
                        epoch,
                        slot: Slot::Current,
                        trial: Box::new(trial),
                    })
                }
                Err(e) => send(Action::WorkFailed {
                    epoch,
                    error: format!("item {}, {}: {e}", item.id, v.key),
                }),
            }
        }
        Job::AudioSweep {
            epoch,
            item,
            chain,
            baseline,
            mask,
        } => {
            let spec = AudioSpec::Mask(mask.0, mask.1);
            let dir = super::alter::scratch_dir();
            let mut failed: Vec<String> = Vec::new();
            for &level in spec.levels() {
                if cancelled() {
                    return;
                }
                let key = spec.trial_key(level, Design::Held);
                let clip = match altered_clip(&item, &spec, level, ctx.seed, &dir) {
                    Ok(Some(p)) => p,
                    Ok(None) => continue,
                    Err(e) => {
                        failed.push(format!("{key}: {e}"));
                        continue;
                    }
                };
                let altered = Item {
                    audio: clip,
                    ..(*item).clone()
                };
                let v = intervene::Variant {
                    kind: spec.kind(),
                    key: key.clone(),
                    x: spec.x(level),
                    paper_x: None,
                    body: intervene::Body::Chain(chain.sanitized_cot.clone()),
                    detail: Default::default(),
                };
                match sweep.answer_variant(&altered, Some(&chain), Some(&baseline), &v) {
                    Ok(mut t) => {
                        mark_trial(&mut t, &spec, level, Design::Held, &item.audio);
                        send(Action::SweepTrial {
                            epoch,
                            trial: Box::new(t),
                        });
                    }
                    Err(e) => failed.push(format!("{key}: {e}")),
                }
            }
            send(Action::SweepDone { epoch });
            if let Some(first) = failed.first() {
                send(Action::Error(format!(
                    "audio sweep of item {}: {} step(s) failed; first: {first}",
                    item.id,
                    failed.len()
                )));
            }
        }
        Job::Sweep {
            epoch,
            item,
            chain,
            baseline,
        } => {
            // As `faithscope run` does: early answering, then each mistake and each paraphrase
            // written by the model under test (streamed to the view as it writes), then answered.
            // A sentence the model writes no usable mistake for (or too short for the protocol)
            // gets the rule-based one, labelled so.
            let s = &chain.sentences;
            let mut failed: Vec<String> = Vec::new();
            // One failing variant (say, a continuation past the context) does not stop the
            // others: its error is kept for the end.
            let answer = |sweep: &mut Sweep,
                          v: &intervene::Variant,
                          send: &mut dyn FnMut(Action)|
             -> Option<String> {
                match sweep.answer_variant(&item, Some(&chain), Some(&baseline), v) {
                    Ok(t) => {
                        send(Action::SweepTrial {
                            epoch,
                            trial: Box::new(t),
                        });
                        None
                    }
                    Err(e) => Some(format!("{}: {e}", v.key)),
                }
            };
            for v in intervene::early(s) {
                if cancelled() {
                    return;
                }
                failed.extend(answer(&mut sweep, &v, send));
            }
            let writable = slots(&ctx.protocol, PerturbKind::Mistake, s);
            for i in 1..=s.len() {
                let mut written = None;
                if writable.contains(&i) {
                    let r = write_streaming(
                        ctx,
                        PerturbKind::Mistake,
                        &item,
                        &s[i - 1],
                        i,
                        epoch,
                        cancelled,
                        send,
                    );
                    match r {
                        Ok(m) => written = m,
                        Err(e) => failed.push(format!("writing mistake:{i}: {e}")),
                    }
                }
                if cancelled() {
                    return;
                }
                let v = match written {
                    Some(m) => intervene::mistake(s, i, &m, "model", &Writer::SameModel.label()),
                    None => {
                        let seed = sweep.seed_for(&item.id, 0, &PerturbKind::Mistake.trial_key(i));
                        let Some(m) = proposed_mistake(&item, s, i, seed) else {
                            continue;
                        };
                        let source = if m.kind == "fact" { "facts" } else { "rules" };
                        intervene::mistake(s, i, &m.edited, &m.kind, source)
                    }
                };
                failed.extend(answer(&mut sweep, &v, send));
            }
            for k in slots(&ctx.protocol, PerturbKind::Paraphrase, s) {
                let text = join_sentences(&s[..k]);
                let r = write_streaming(
                    ctx,
                    PerturbKind::Paraphrase,
                    &item,
                    &text,
                    k,
                    epoch,
                    cancelled,
                    send,
                );
                if cancelled() {
                    return;
                }
                match r {
                    Ok(Some(p)) => {
                        let mut v = intervene::paraphrase(s, k, &p);
                        v.detail.paraphrase_source = Some(Writer::SameModel.label());
                        failed.extend(answer(&mut sweep, &v, send));
                    }
                    Ok(None) => {}
                    Err(e) => failed.push(format!("writing paraphrase:{k}: {e}")),
                }
            }
            send(Action::SweepDone { epoch });
            if let Some(first) = failed.first() {
                send(Action::Error(format!(
                    "sweep of item {}: {} variant(s) failed; first: {first}",
                    item.id,
                    failed.len()
                )));
            }
        }
    }
}

/// Asks the model under test for perturbation `n` of `original` (the protocol's prompt, the
/// seed `faithscope run` would use), sending each piece as [`Action::Writing`] while it is
/// written; `cancelled` stops it (the result is then `None`).
#[allow(clippy::too_many_arguments)]
fn write_streaming(
    ctx: &ModelCtx,
    kind: PerturbKind,
    item: &Item,
    original: &str,
    n: usize,
    epoch: u64,
    cancelled: &dyn Fn() -> bool,
    send: &mut dyn FnMut(Action),
) -> Result<Option<String>, crate::model::ModelError> {
    let key = kind.trial_key(n);
    let seed = trial_seed(ctx.seed, &item.id, 0, &key);
    kind.ask_streaming(
        ctx.reasoner.as_ref(),
        &ctx.protocol,
        item,
        original,
        seed,
        &mut |delta| {
            if cancelled() {
                return ControlFlow::Break(());
            }
            send(Action::Writing {
                epoch,
                key: key.clone(),
                text: delta.to_string(),
            });
            ControlFlow::Continue(())
        },
    )
}

/// Decodes a clip and computes its display data.
pub fn decode_clip(path: &Path) -> Result<(Clip, ClipView), String> {
    let clip = decode_file(path, &DecodeOptions::default()).map_err(|e| e.to_string())?;
    let view = clip_view(&clip);
    Ok((clip, view))
}

/// Display data of a decoded clip.
pub fn clip_view(clip: &Clip) -> ClipView {
    let (w, h) = SPEC_GRID;
    ClipView {
        name: clip
            .source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        seconds: clip.seconds(),
        peaks: peaks(&clip.samples, PEAK_COLUMNS),
        spec: spectrogram_db(&clip.samples, clip.sample_rate, w, h),
        spec_w: w,
        spec_h: h,
    }
}

/// The current time as RFC 3339 UTC (seconds).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Appends one annotation as one JSONL line: the line is written with a single `write` on a file
/// opened for appending and synced before returning, so a crash never leaves a torn record
/// followed by another one. The time is stamped here.
pub fn append_annotation(path: &Path, record: &Annotation) -> Result<Annotation, String> {
    let mut rec = record.clone();
    if rec.time.is_empty() {
        rec.time = utc_now();
    }
    let mut line =
        serde_json::to_string(&rec).map_err(|e| format!("cannot encode the annotation: {e}"))?;
    line.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create folder {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open annotation file {}: {e}; choose another with --annotations",
                path.display()
            )
        })?;
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| format!("cannot write annotation file {}: {e}", path.display()))?;
    Ok(rec)
}

/// Writes `annotations.csv` and `session-trials.jsonl` beside the annotation file; returns the
/// paths written.
pub fn export(
    path: &Path,
    annotations: &[Annotation],
    trials: &[Trial],
) -> Result<Vec<PathBuf>, String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "annotations".into());
    let csv_path = dir.join(format!("{stem}.csv"));
    let err = |p: &Path, e: &dyn std::fmt::Display| format!("cannot write {}: {e}", p.display());
    let mut w = csv::Writer::from_path(&csv_path).map_err(|e| err(&csv_path, &e))?;
    w.write_record([
        "item",
        "chain",
        "sentence",
        "kind",
        "annotator",
        "time",
        "original",
        "edited",
        "note",
        "baseline_answer",
        "baseline_prob",
        "current_answer",
        "current_prob",
        "current_prob_of_baseline",
        "flipped",
        "shown_chain",
    ])
    .map_err(|e| err(&csv_path, &e))?;
    for a in annotations {
        let ans = AnswerColumns::of(a.answers.as_ref());
        w.write_record([
            a.item.as_str(),
            &a.chain.to_string(),
            &a.sentence.to_string(),
            &a.kind,
            &a.annotator,
            &a.time,
            &a.original,
            &a.edited,
            &a.note,
            &ans.baseline,
            &ans.baseline_prob,
            &ans.current,
            &ans.current_prob,
            &ans.current_prob_of_baseline,
            &ans.flipped,
            &ans.chain,
        ])
        .map_err(|e| err(&csv_path, &e))?;
    }
    w.flush().map_err(|e| err(&csv_path, &e))?;
    let trials_path = dir.join("session-trials.jsonl");
    let mut f = std::fs::File::create(&trials_path).map_err(|e| err(&trials_path, &e))?;
    for t in trials {
        write_trial(&mut f, t).map_err(|e| err(&trials_path, &e))?;
    }
    // Whole paths: the person has to find the files.
    Ok([csv_path, trials_path]
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect())
}

/// The answer columns of an annotation's CSV row, from the `answers` its JSONL record holds
/// (empty where the record has none, e.g. written by another tool).
#[derive(Debug, Default, PartialEq)]
struct AnswerColumns {
    baseline: String,
    baseline_prob: String,
    current: String,
    current_prob: String,
    current_prob_of_baseline: String,
    flipped: String,
    chain: String,
}

impl AnswerColumns {
    fn of(answers: Option<&serde_json::Value>) -> AnswerColumns {
        let Some(a) = answers else {
            return AnswerColumns::default();
        };
        // P(letter) in one of the recorded answers.
        let prob = |which: &str, letter: &str| -> String {
            let ans = &a[which];
            let letters = ans["letters"].as_array();
            let probs = ans["probs"].as_array();
            letters
                .zip(probs)
                .and_then(|(l, p)| {
                    let i = l.iter().position(|x| x.as_str() == Some(letter))?;
                    p.get(i)?.as_f64()
                })
                .map(|p| format!("{p:.4}"))
                .unwrap_or_default()
        };
        let letter = |which: &str| a[which]["predicted"].as_str().unwrap_or("").to_string();
        let (b, c) = (letter("baseline"), letter("current"));
        AnswerColumns {
            baseline_prob: prob("baseline", &b),
            current_prob: prob("current", &c),
            current_prob_of_baseline: prob("current", &b),
            flipped: a["flipped"]
                .as_bool()
                .map(|f| f.to_string())
                .unwrap_or_default(),
            chain: a["chain"].as_str().unwrap_or("").to_string(),
            baseline: b,
            current: c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
