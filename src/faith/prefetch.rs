//! Generations asked for ahead, in batches (`run --batch N`).
//!
//! The sweep knows, before it runs them, which generations a chain's trials need: the chains of
//! an item (`--chains K`), the mistaken sentences and the continuations after them, the
//! paraphrases. [`Prefetch`] decodes such a list several sequences per step through
//! [`Reasoner::generate_batch`] and keeps the results; the trials then run one by one in their
//! usual order and find their generation here, so records, seeds and resume behave exactly as
//! without batching. It is itself a [`Reasoner`]: everything else passes through.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use crate::model::{
    ChoiceProbs, Conversation, GenParams, Generation, ModelError, ModelStats, Reasoner,
};

/// A reasoner with generations fetched ahead.
pub struct Prefetch<'a> {
    inner: &'a dyn Reasoner,
    batch: usize,
    ready: Mutex<HashMap<Key, Result<Generation, ModelError>>>,
}

/// A request as the trials will make it (the parameters by their debug form: `f64`s have no
/// `Hash`).
type Key = (Conversation, String);

fn key(conv: &Conversation, params: &GenParams) -> Key {
    (conv.clone(), format!("{params:?}"))
}

impl<'a> Prefetch<'a> {
    /// Fetches ahead `batch` sequences at a time; 0 or 1 fetches nothing (every call goes
    /// straight to `inner`).
    pub fn new(inner: &'a dyn Reasoner, batch: usize) -> Self {
        Self {
            inner,
            batch,
            ready: Mutex::new(HashMap::new()),
        }
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The reasoner fetched from.
    pub fn inner(&self) -> &'a dyn Reasoner {
        self.inner
    }

    /// Generates `requests` (those not fetched already, each once) in batches and keeps the
    /// results, errors included, for the calls that will ask for them.
    pub fn fetch(&self, requests: Vec<(Conversation, GenParams)>) {
        if self.batch <= 1 {
            return;
        }
        let mut todo: Vec<(Conversation, GenParams)> = Vec::new();
        {
            let ready = self.lock();
            for r in requests {
                let k = key(&r.0, &r.1);
                if !ready.contains_key(&k) && !todo.iter().any(|t| key(&t.0, &t.1) == k) {
                    todo.push(r);
                }
            }
        }
        for chunk in todo.chunks(self.batch) {
            // one request alone gains nothing from being fetched ahead
            if chunk.len() < 2 {
                continue;
            }
            let out = self.inner.generate_batch(chunk);
            let mut ready = self.lock();
            for ((c, p), g) in chunk.iter().zip(out) {
                ready.insert(key(c, p), g);
            }
        }
    }

    /// Drops what was fetched and not asked for.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Result<Generation, ModelError>>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Reasoner for Prefetch<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// A fetched generation is handed over once (its text passed to `on_delta` in one piece);
    /// anything else is generated now.
    fn generate(
        &self,
        conv: &Conversation,
        params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        let hit = self.lock().remove(&key(conv, params));
        match hit {
            Some(Ok(g)) => {
                if !g.text.is_empty() {
                    let _ = on_delta(&g.text);
                }
                Ok(g)
            }
            Some(Err(e)) => Err(e),
            None => self.inner.generate(conv, params, on_delta),
        }
    }

    fn generate_batch(
        &self,
        requests: &[(Conversation, GenParams)],
    ) -> Vec<Result<Generation, ModelError>> {
        self.inner.generate_batch(requests)
    }

    fn choice_probs(
        &self,
        conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError> {
        self.inner.choice_probs(conv, letters)
    }

    fn describe(&self) -> Option<String> {
        self.inner.describe()
    }

    fn has_logprobs(&self) -> bool {
        self.inner.has_logprobs()
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.inner.count_tokens(text)
    }

    fn audio_window_seconds(&self) -> Option<f64> {
        self.inner.audio_window_seconds()
    }

    fn stats(&self) -> ModelStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, Role, StopReason};

    /// Answers each prompt with its own text, counting calls; "fail" is an error.
    #[derive(Default)]
    struct Echo {
        batches: Mutex<Vec<usize>>,
        single: Mutex<usize>,
    }

    fn answer(conv: &Conversation) -> Result<Generation, ModelError> {
        let text = conv.messages[0].text.clone();
        if text == "fail" {
            return Err(ModelError::Compute("no".into()));
        }
        Ok(Generation {
            text,
            tokens: vec![1],
            stop: StopReason::EndToken,
            reasoning: String::new(),
        })
    }

    impl Reasoner for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn generate(
            &self,
            conv: &Conversation,
            _: &GenParams,
            _: &mut dyn FnMut(&str) -> ControlFlow<()>,
        ) -> Result<Generation, ModelError> {
            *self.single.lock().unwrap() += 1;
            answer(conv)
        }
        fn generate_batch(
            &self,
            requests: &[(Conversation, GenParams)],
        ) -> Vec<Result<Generation, ModelError>> {
            self.batches.lock().unwrap().push(requests.len());
            requests.iter().map(|(c, _)| answer(c)).collect()
        }
        fn choice_probs(&self, _: &Conversation, _: &[String]) -> Result<ChoiceProbs, ModelError> {
            Err(ModelError::Compute("unused".into()))
        }
    }

    fn req(text: &str, seed: u64) -> (Conversation, GenParams) {
        let conv = Conversation {
            audio: None,
            messages: vec![Message {
                role: Role::User,
                text: text.into(),
            }],
            prefill: None,
        };
        let params = GenParams {
            seed,
            ..GenParams::default()
        };
        (conv, params)
    }

    fn ask(p: &Prefetch, text: &str, seed: u64) -> (Result<Generation, ModelError>, String) {
        let (c, g) = req(text, seed);
        let mut seen = String::new();
        let out = p.generate(&c, &g, &mut |d| {
            seen.push_str(d);
            ControlFlow::Continue(())
        });
        (out, seen)
    }

    #[test]
    fn fetched_generations_are_handed_over_once_in_chunks_of_the_batch() {
        let echo = Echo::default();
        let p = Prefetch::new(&echo, 2);
        // a duplicate is fetched once; 5 distinct requests make chunks of 2, 2 and a lone 1
        // that is left to be generated when asked
        p.fetch(vec![
            req("a", 1),
            req("b", 1),
            req("a", 1),
            req("fail", 1),
            req("c", 2),
            req("d", 1),
        ]);
        assert_eq!(*echo.batches.lock().unwrap(), vec![2, 2]);
        let (g, seen) = ask(&p, "b", 1);
        assert_eq!((g.unwrap().text, seen.as_str()), ("b".to_string(), "b"));
        assert!(ask(&p, "fail", 1).0.unwrap_err().to_string().contains("no"));
        assert_eq!(*echo.single.lock().unwrap(), 0);
        // other parameters are another request
        assert_eq!(ask(&p, "a", 9).0.unwrap().text, "a");
        assert_eq!(*echo.single.lock().unwrap(), 1);
        // taken once: asking again generates
        ask(&p, "b", 1).0.unwrap();
        ask(&p, "d", 1).0.unwrap();
        assert_eq!(*echo.single.lock().unwrap(), 3);
        p.clear();
        ask(&p, "a", 1).0.unwrap();
        assert_eq!(*echo.single.lock().unwrap(), 4);
    }

    #[test]
    fn a_batch_of_one_fetches_nothing() {
        let echo = Echo::default();
        let p = Prefetch::new(&echo, 1);
        p.fetch(vec![req("a", 1), req("b", 1)]);
        assert!(echo.batches.lock().unwrap().is_empty());
        assert_eq!(ask(&p, "a", 1).0.unwrap().text, "a");
        assert_eq!(*echo.single.lock().unwrap(), 1);
    }
}
