//! `faithscope serve`: load a model and serve it over an OpenAI-compatible HTTP API
//! ([`crate::serve`]). Loopback by default; any other address needs an API key file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::model::candle_backend::{CacheOptions, CandleReasoner, LoadOptions};
use crate::model::resolve::{compute_dtype, resolve_model, select_device};
use crate::serve::{serve, AppState, ServeOptions};

/// Arguments of `faithscope serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Model folder, or a repo id (ORG/NAME) in the local Hugging Face cache.
    #[arg(long)]
    pub model: String,
    /// Address to listen on; anything but loopback needs --api-key-file.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed when listening).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// File holding the API key clients must send as `Authorization: Bearer KEY`.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Model id clients name (default: the model folder's name, or the repo id).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: f32, f16 or bf16 (default f32 on CPU, bf16 on a GPU).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Merge this LoRA adapter at load: a subfolder of the model (`think`) or a peft folder.
    #[arg(long, value_name = "NAME|DIR")]
    pub adapter: Option<String>,
    /// Quantise the linear weights at load: none, q8_0, q6k, q5k, q4k (activations f32).
    #[arg(long, value_name = "TYPE", default_value = "none", value_parser = crate::cli::run::parse_quant)]
    pub quant: crate::model::Quant,
    /// Largest request body in MB (a base64 clip is 4/3 of its file).
    #[arg(long, default_value_t = 64)]
    pub max_body_mb: usize,
    /// Longest clip accepted, in seconds (the model itself hears its own window).
    #[arg(long, default_value_t = 600.0)]
    pub max_audio_seconds: f64,
    /// Most requests in flight (up to --batch decode together, the rest wait); more get 503
    /// with Retry-After. Default: 4 times --batch.
    #[arg(long)]
    pub queue: Option<usize>,
    /// Most requests decoded together, one token each per step; a new request joins the running
    /// batch at the next step (continuous batching). Default: 8 on the CPU, 16 on a GPU.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Longest a request may take, waiting included, in seconds (then 504).
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Refuse log-probabilities (400), as hosted APIs do: for trying a client's fallback of
    /// reading answers from generated text.
    #[arg(long)]
    pub no_logprobs: bool,
    /// Send what the model writes between <think> and </think> on the reasoning channel
    /// (reasoning_content), as vLLM's and llama.cpp's reasoning parsers do for thinking models.
    #[arg(long)]
    pub think_tags: bool,
}

/// Reads the key: the file's first line, trimmed; empty is an error. The key is never printed.
pub fn read_key(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the API key file {}", path.display()))?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() {
        bail!(
            "the API key file {} is empty; write the key on its first line",
            path.display()
        );
    }
    Ok(key)
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.queue == Some(0) {
        bail!("--queue must be at least 1");
    }
    if args.batch == Some(0) {
        bail!("--batch 0: give at least 1 request per step (1 decodes one at a time)");
    }
    if args.max_audio_seconds.is_nan() || args.max_audio_seconds <= 0.0 {
        bail!("--max-audio-seconds must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    let addrs: Vec<SocketAddr> = rt
        .block_on(tokio::net::lookup_host((args.host.as_str(), args.port)))
        .with_context(|| format!("--host {}: cannot resolve the address", args.host))?
        .collect();
    let Some(&addr) = addrs.first() else {
        bail!("--host {}: the name resolves to no address", args.host);
    };
    let api_key = args.api_key_file.as_deref().map(read_key).transpose()?;
    if api_key.is_none() && !addrs.iter().all(|a| a.ip().is_loopback()) {
        bail!(
            "refusing to listen on {} without --api-key-file: anyone who can reach this machine could use the model; \
             pass --api-key-file FILE (clients send `Authorization: Bearer KEY`), or keep the default --host 127.0.0.1",
            args.host
        );
    }
    let dir = resolve_model(&args.model)?;
    let device = select_device(&args.device)?;
    let dtype = compute_dtype(args.dtype.as_deref(), &device, args.quant)?;
    let model = CandleReasoner::load_with(
        &dir,
        &device,
        dtype,
        &LoadOptions {
            caches: CacheOptions::default(),
            adapter: args.adapter.clone(),
            quant: args.quant,
            quant_cache: crate::model::quant_cache::default_dir(),
        },
    )
    .with_context(|| format!("loading the model {}", dir.display()))?;
    let name = args.served_model_name.clone().unwrap_or_else(|| {
        if Path::new(&args.model).is_dir() {
            crate::model::Reasoner::name(&model).to_string()
        } else {
            args.model.clone()
        }
    });
    let batch = args.batch.unwrap_or(if device.is_cpu() { 8 } else { 16 });
    let opts = ServeOptions {
        name: name.clone(),
        api_key,
        max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
        max_audio_seconds: args.max_audio_seconds,
        queue: args.queue.unwrap_or(4 * batch),
        batch,
        timeout: Duration::from_secs(args.timeout_s.max(1)),
        no_logprobs: args.no_logprobs,
        think_tags: args.think_tags,
    };
    let state = Arc::new(AppState::new(Arc::new(model), opts).context("creating the clip folder")?);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let port = listener.local_addr()?.port();
        let host = if addr.is_ipv6() {
            format!("[{}]", args.host)
        } else {
            args.host.clone()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "faithscope serve: {name} on http://{host}:{port}/v1")?;
        out.flush()?;
        drop(out);
        serve(listener, state).await.context("serving")
    })
}
