//! Warnings from library code (a truncated clip, a clip cut to the model's window) reach the
//! person running faithscope: on stderr for the command-line tools, or through a sink that the
//! inspector installs while it owns the terminal, so that nothing is written over its screen.

use std::sync::{Arc, Mutex};

/// An error and its causes as one line, each cause said once (an OS reason that a cause's
/// message already holds is not repeated).
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = String::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let c = err.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
        cur = err.source();
    }
    msg
}

/// Receives every warning while installed.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Reports `message` (without a "warning:" prefix): to the installed sink, else to stderr.
pub fn warn(message: &str) {
    let sink = SINK.lock().ok().and_then(|g| g.clone());
    match sink {
        Some(s) => s(message),
        None => eprintln!("warning: {message}"),
    }
}

/// Sends warnings to `sink` until the returned guard is dropped (then stderr again).
pub fn install(sink: Sink) -> SinkGuard {
    if let Ok(mut g) = SINK.lock() {
        *g = Some(sink);
    }
    SinkGuard(())
}

/// Restores stderr as the destination of warnings when dropped.
pub struct SinkGuard(());

impl Drop for SinkGuard {
    fn drop(&mut self) {
        if let Ok(mut g) = SINK.lock() {
            *g = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_sink_gets_the_warnings_until_dropped() {
        let got = Arc::new(Mutex::new(Vec::<String>::new()));
        {
            let got = got.clone();
            let _g = install(Arc::new(move |m: &str| {
                got.lock().unwrap().push(m.to_string())
            }));
            warn("clip cut to 3.0 s");
        }
        warn("after the guard: stderr");
        // Other tests of this process may warn meanwhile: look for ours only.
        let got = got.lock().unwrap();
        assert!(got.iter().any(|m| m == "clip cut to 3.0 s"), "{got:?}");
        assert!(
            !got.iter().any(|m| m.starts_with("after the guard")),
            "{got:?}"
        );
    }
}
