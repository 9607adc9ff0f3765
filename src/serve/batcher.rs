//! The model's own thread in `serve`: continuous batching. Checked requests (their clips
//! stored) queue here; between decode steps, waiting requests join the running batch (each is
//! prefilled from the longest cached prefix) up to `--batch` sequences, and every step feeds one
//! token of each running sequence through the decoder at once ([`DecodeBatch`]). A sequence
//! leaves when it ends; its reply goes back over its own channel. Log-prob reads (one forward
//! step, no decoding) are answered when they are admitted. Each reply is what the request alone
//! gets: greedy tokens identical, seeds per request.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::chat::{finish_reason, next_token, Finished, Job, Msg};
use super::error::ApiError;
use super::think::ThinkSplitter;
use super::Counters;
use crate::model::candle_backend::{CandleReasoner, DecodeBatch};
use crate::model::{Generation, ModelError, StopReason};

/// A request handed to the model's thread.
pub struct Work {
    /// The checked request, its clip stored.
    pub job: Job,
    /// Set when the client has gone.
    pub cancel: Arc<AtomicBool>,
    /// When the request times out.
    pub deadline: Instant,
    /// Where its messages go.
    pub tx: UnboundedSender<Msg>,
    /// Its `--queue` slot, given back when its work ends.
    pub permit: OwnedSemaphorePermit,
}

/// Batch counters for `/v1/stats`.
#[derive(Debug, Default)]
pub struct BatchCounters {
    /// Decode steps run.
    pub steps: AtomicU64,
    /// Sequences fed, summed over the steps (over `steps`: the mean batch).
    pub rows: AtomicU64,
    /// The most sequences in one step.
    pub largest: AtomicU64,
}

/// The thread's settings.
pub struct Batcher {
    /// The model.
    pub model: Arc<CandleReasoner>,
    /// Most sequences decoded together (`--batch`).
    pub batch: usize,
    /// `--think-tags`.
    pub think_tags: bool,
    /// `--timeout-s`, for the timeout error.
    pub timeout: Duration,
    /// The request counters.
    pub counters: Arc<Counters>,
}

/// A running request's side of the work: where its text goes, and its queue slot.
struct Live {
    tx: UnboundedSender<Msg>,
    cancel: Arc<AtomicBool>,
    deadline: Instant,
    stream: bool,
    prefill: Option<String>,
    /// Splits streamed text into the reasoning and answer channels (`--think-tags`).
    split: Option<ThinkSplitter>,
    _permit: OwnedSemaphorePermit,
}

type Shared = Rc<RefCell<Live>>;

impl Batcher {
    /// Starts the thread; requests go in through the returned sender, and the thread ends when
    /// every sender is gone and its work is done.
    pub fn start(self) -> std::io::Result<Sender<Work>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("faithscope-model".into())
            .spawn(move || self.run(rx))?;
        Ok(tx)
    }

    fn run(self, rx: Receiver<Work>) {
        let mut waiting = VecDeque::new();
        let mut batch: DecodeBatch<'_, 'static, Shared> = DecodeBatch::new(&self.model);
        loop {
            if batch.is_empty() && waiting.is_empty() {
                match rx.recv() {
                    Ok(w) => waiting.push_back(w),
                    Err(_) => return,
                }
            }
            waiting.extend(rx.try_iter());
            while batch.len() < self.batch.max(1) {
                let Some(w) = waiting.pop_front() else { break };
                self.admit(&mut batch, w);
            }
            let rows = batch.len() as u64;
            for (live, result) in batch.step() {
                self.deliver(&live, result);
            }
            if rows > 0 {
                let b = &self.counters.batch;
                b.steps.fetch_add(1, Ordering::Relaxed);
                b.rows.fetch_add(rows, Ordering::Relaxed);
                b.largest.fetch_max(rows, Ordering::Relaxed);
            }
        }
    }

    /// Checks a request against the model's context and either answers it at once (log-probs,
    /// errors) or adds it to the batch.
    fn admit(&self, batch: &mut DecodeBatch<'_, 'static, Shared>, w: Work) {
        let Work {
            mut job,
            cancel,
            deadline,
            tx,
            permit,
        } = w;
        if cancel.load(Ordering::Relaxed) || Instant::now() >= deadline {
            // the client has gone (or is being told it timed out): nothing to answer
            if Instant::now() < deadline {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let model = &self.model;
        let checked = (|| -> Result<usize, ApiError> {
            let n = model.render_prompt(&job.conv)?.ids.len();
            let ctx = model.max_context();
            if n >= ctx {
                return Err(ApiError::bad_request(format!(
                    "the prompt is {n} tokens; the model's context is {ctx} tokens, which leaves no room to generate; shorten the messages"
                ))
                .with_code("context_length_exceeded"));
            }
            Ok(n)
        })();
        let n = match checked {
            Ok(n) => n,
            Err(e) => return self.reply(&tx, Err(e)),
        };
        job.params.max_tokens = job.params.max_tokens.min(model.max_context() - n);
        let _ = tx.send(Msg::Started { prompt_tokens: n });
        if let Some(ask) = &job.logprobs {
            return self.reply(&tx, next_token(model, &job, ask).map(Some));
        }
        let prefill = job.conv.prefill.clone();
        let live = Rc::new(RefCell::new(Live {
            split: self
                .think_tags
                .then(|| ThinkSplitter::after(prefill.as_deref())),
            tx,
            cancel,
            deadline,
            stream: job.stream,
            prefill,
            _permit: permit,
        }));
        let feed = live.clone();
        let on_delta = Box::new(move |d: &str| {
            let mut l = feed.borrow_mut();
            if l.cancel.load(Ordering::Relaxed) || Instant::now() >= l.deadline {
                return ControlFlow::Break(());
            }
            if l.stream {
                let parts = match l.split.as_mut() {
                    Some(s) => s.push(d),
                    None => vec![(false, d.to_string())],
                };
                if !send(&l.tx, parts) {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        batch.join(live, &job.conv, &job.params, on_delta);
    }

    /// A finished sequence's reply.
    fn deliver(&self, live: &Shared, result: Result<Generation, ModelError>) {
        let mut l = live.borrow_mut();
        let reply = (|| -> Result<Option<Finished>, ApiError> {
            let g = result?;
            if l.stream {
                if let Some(rest) = l.split.as_mut().map(ThinkSplitter::finish) {
                    send(&l.tx, rest);
                }
            }
            let (reasoning, text) = match self.think_tags {
                true => ThinkSplitter::after(l.prefill.as_deref()).split_all(&g.text),
                false => (String::new(), g.text.clone()),
            };
            if g.stop == StopReason::Cancelled {
                if Instant::now() >= l.deadline {
                    return Err(self.counters.timed_out(self.timeout));
                }
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            Ok(Some(Finished {
                text,
                reasoning,
                tokens: g.tokens.len(),
                finish: finish_reason(g.stop),
                logprobs: None,
            }))
        })();
        self.reply(&l.tx, reply);
    }

    /// Sends the end of a request: its result, its error, or nothing (cancelled).
    fn reply(&self, tx: &UnboundedSender<Msg>, result: Result<Option<Finished>, ApiError>) {
        match result {
            Ok(Some(f)) => {
                self.counters.completed.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(Msg::Finished(f));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Msg::Failed(e));
            }
        }
    }
}

/// Streams text pieces; false once the receiver has gone.
fn send(tx: &UnboundedSender<Msg>, parts: Vec<(bool, String)>) -> bool {
    parts
        .into_iter()
        .all(|(reasoning, text)| tx.send(Msg::Delta { text, reasoning }).is_ok())
}
