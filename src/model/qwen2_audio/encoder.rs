//! The Whisper-style audio tower (`audio_tower.*`) and the projector into the decoder, as in
//! transformers' `Qwen2AudioEncoder` (+ `multi_modal_projector.linear`),
//! `AudioFlamingo3Encoder` (+ the two-layer `multi_modal_projector`) and
//! `Qwen2_5OmniAudioEncoder` (sinusoidal positions, `ln_post`, `proj`). One tower runs a batch
//! of windows (or Omni chunks) with a key mask for each one's padding; what differs is where the
//! positions come from and what projects the pooled states.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, Embedding, LayerNorm, Linear, VarBuilder};

use super::ops::{QLinear, Quantizer};
use crate::model::config::{Arch, AudioEncoderConfig};

/// Epsilon of `nn.LayerNorm` (PyTorch default).
const LN_EPS: f64 = 1e-5;

/// Bidirectional self-attention of one encoder layer (`self_attn`): k without bias.
struct EncoderAttention {
    q_proj: QLinear,
    k_proj: QLinear,
    v_proj: QLinear,
    out_proj: QLinear,
    heads: usize,
    head_dim: usize,
}

impl EncoderAttention {
    fn load(cfg: &AudioEncoderConfig, vb: VarBuilder, q: &Quantizer) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            q_proj: q.linear(d, d, true, vb.pp("q_proj"))?,
            k_proj: q.linear(d, d, false, vb.pp("k_proj"))?,
            v_proj: q.linear(d, d, true, vb.pp("v_proj"))?,
            out_proj: q.linear(d, d, true, vb.pp("out_proj"))?,
            heads: cfg.encoder_attention_heads,
            head_dim: d / cfg.encoder_attention_heads,
        })
    }

    /// `x`: [b, L, d]; `mask`: additive key mask (0 or -inf) broadcastable to [b, heads, L, L],
    /// or none.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let shape = |t: Tensor| {
            t.reshape((b, l, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let scale = (self.head_dim as f64).powf(-0.5);
        let q = shape((self.q_proj.forward(x)? * scale)?)?;
        let k = shape(self.k_proj.forward(x)?)?;
        let v = shape(self.v_proj.forward(x)?)?;
        let mut w = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = super::ops::softmax_last_dim(&w)?;
        let o = w.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out_proj.forward(&o)
    }
}

/// One pre-LN encoder layer (`layers.N`).
struct EncoderLayer {
    self_attn: EncoderAttention,
    self_attn_layer_norm: LayerNorm,
    fc1: QLinear,
    fc2: QLinear,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(cfg: &AudioEncoderConfig, vb: VarBuilder, q: &Quantizer) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: EncoderAttention::load(cfg, vb.pp("self_attn"), q)?,
            self_attn_layer_norm: candle_nn::layer_norm(d, LN_EPS, vb.pp("self_attn_layer_norm"))?,
            fc1: q.linear(d, cfg.encoder_ffn_dim, true, vb.pp("fc1"))?,
            fc2: q.linear(cfg.encoder_ffn_dim, d, true, vb.pp("fc2"))?,
            final_layer_norm: candle_nn::layer_norm(d, LN_EPS, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.self_attn.forward(
            &super::ops::layer_norm(&self.self_attn_layer_norm, x, LN_EPS)?,
            mask,
        )?;
        let x = (x + h)?;
        let h = super::ops::layer_norm(&self.final_layer_norm, &x, LN_EPS)?;
        let h = self.fc2.forward(&self.fc1.forward(&h)?.gelu_erf()?)?;
        let x = (x + h)?;
        if x.dtype() == DType::F16 {
            // The reference clamps f16 activations to avoid infinities.
            let c = (f16_max() - 1000.0) as f64;
            return x.clamp(-c, c);
        }
        Ok(x)
    }
}

fn f16_max() -> f32 {
    half::f16::MAX.to_f32()
}

/// Where the encoder's position embeddings come from.
enum Positions {
    /// Learned (`embed_positions`), one row per position of the window.
    Learned(Embedding),
    /// Whisper's sinusoids (`max_source_positions` rows), restarting in every Omni chunk.
    Sinusoid(Tensor),
}

/// The projection of pooled encoder states into the decoder's embedding space.
enum Projector {
    /// Qwen2-Audio's `multi_modal_projector.linear`, Omni's `audio_tower.proj`.
    Linear(Linear),
    /// Audio Flamingo 3's `linear_1`, GELU, `linear_2`.
    Mlp(Linear, Linear),
}

impl Projector {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Projector::Linear(l) => l.forward(x),
            Projector::Mlp(a, b) => b.forward(&a.forward(x)?.gelu_erf()?),
        }
    }
}

/// Whisper's sinusoidal position table [length, channels] (transformers'
/// `SinusoidsPositionEmbedding`: sines then cosines, timescales up to 10000).
fn sinusoids(length: usize, channels: usize, dev: &candle_core::Device) -> Result<Tensor> {
    let half = channels / 2;
    let inc = (10_000f64).ln() / (half as f64 - 1.0).max(1.0);
    let inv: Vec<f32> = (0..half).map(|i| (-inc * i as f64).exp() as f32).collect();
    let mut data = vec![0f32; length * channels];
    for t in 0..length {
        for (i, &f) in inv.iter().enumerate() {
            let x = t as f32 * f;
            data[t * channels + i] = x.sin();
            data[t * channels + half + i] = x.cos();
        }
    }
    Tensor::from_vec(data, (length, channels), dev)
}

/// Averages consecutive pairs of rows (`AvgPool1d(2, 2)` over time): [.., n, d] -> [.., n/2, d],
/// an odd last row dropped.
fn pool_pairs(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(D::Minus2)?;
    let d = x.dim(D::Minus1)?;
    let mut shape: Vec<usize> = x.dims()[..x.rank() - 2].to_vec();
    shape.extend([n / 2, 2, d]);
    x.narrow(D::Minus2, 0, n / 2 * 2)?
        .reshape(shape)?
        .sum(D::Minus2)?
        .affine(0.5, 0.0)
}

/// The audio tower plus the projector into the language model's embedding space.
pub struct AudioTower {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Positions,
    layers: Vec<EncoderLayer>,
    layer_norm: LayerNorm,
    projector: Projector,
}

impl AudioTower {
    /// Loads the tower of `arch` from `vb_tower` (`audio_tower`) and, for Qwen2-Audio and Audio
    /// Flamingo 3, the projector from `vb_proj` (`multi_modal_projector`).
    pub fn load(
        arch: Arch,
        cfg: &AudioEncoderConfig,
        text_hidden: usize,
        projector_bias: bool,
        vb_tower: VarBuilder,
        vb_proj: VarBuilder,
        q: &Quantizer,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let c1 = Conv1dConfig {
            padding: 1,
            ..Default::default()
        };
        let c2 = Conv1dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(cfg, vb_tower.pp("layers").pp(i), q))
            .collect::<Result<Vec<_>>>()?;
        let linear = |i: usize, o: usize, vb: VarBuilder| {
            if projector_bias {
                candle_nn::linear(i, o, vb)
            } else {
                candle_nn::linear_no_bias(i, o, vb)
            }
        };
        let (positions, norm, projector) = match arch {
            Arch::Qwen2Audio => (
                Positions::Learned(candle_nn::embedding(
                    cfg.max_source_positions,
                    d,
                    vb_tower.pp("embed_positions"),
                )?),
                "layer_norm",
                Projector::Linear(candle_nn::linear(d, text_hidden, vb_proj.pp("linear"))?),
            ),
            Arch::AudioFlamingo3 => (
                Positions::Learned(candle_nn::embedding(
                    cfg.max_source_positions,
                    d,
                    vb_tower.pp("embed_positions"),
                )?),
                "layer_norm",
                Projector::Mlp(
                    linear(d, text_hidden, vb_proj.pp("linear_1"))?,
                    linear(text_hidden, text_hidden, vb_proj.pp("linear_2"))?,
                ),
            ),
            Arch::Qwen25Omni => (
                Positions::Sinusoid(
                    sinusoids(cfg.max_source_positions, d, vb_tower.device())?
                        .to_dtype(vb_tower.dtype())?,
                ),
                "ln_post",
                Projector::Linear(candle_nn::linear(
                    d,
                    cfg.output_dim.unwrap_or(text_hidden),
                    vb_tower.pp("proj"),
                )?),
            ),
        };
        Ok(Self {
            conv1: candle_nn::conv1d(cfg.num_mel_bins, d, 3, c1, vb_tower.pp("conv1"))?,
            conv2: candle_nn::conv1d(d, d, 3, c2, vb_tower.pp("conv2"))?,
            positions,
            layers,
            layer_norm: candle_nn::layer_norm(d, LN_EPS, vb_tower.pp(norm))?,
            projector,
        })
    }

    /// Runs the convolutions and layers over a batch `mel` [b, n_mels, frames] (model dtype)
    /// whose item `i` has `conv_lens[i]` real encoder positions (the rest are masked as keys, as
    /// the reference does from the feature mask, or is padding between Omni chunks). With
    /// `frame_lens`, the first convolution's output past each item's frames is zeroed first (the
    /// Omni encoder's `padded_mask`). Returns the states [b, L, d].
    fn encode(
        &self,
        mel: &Tensor,
        conv_lens: &[usize],
        frame_lens: Option<&[usize]>,
    ) -> Result<Tensor> {
        let mut x = self.conv1.forward(mel)?.gelu_erf()?;
        if let Some(lens) = frame_lens {
            let f = x.dim(2)?;
            let m: Vec<f32> = lens
                .iter()
                .flat_map(|&n| (0..f).map(move |j| if j < n { 1.0 } else { 0.0 }))
                .collect();
            let m = Tensor::from_vec(m, (lens.len(), 1, f), x.device())?.to_dtype(x.dtype())?;
            x = x.broadcast_mul(&m)?;
        }
        let x = self.conv2.forward(&x)?.gelu_erf()?;
        let x = x.transpose(1, 2)?; // [b, L, d]
        let (b, l, _) = x.dims3()?;
        let table = match &self.positions {
            Positions::Learned(e) => e.embeddings(),
            Positions::Sinusoid(t) => t,
        };
        if table.dim(0)? < l {
            candle_core::bail!(
                "{l} encoder positions exceed the {} position embeddings",
                table.dim(0)?
            );
        }
        let x = x.broadcast_add(&table.narrow(0, 0, l)?)?;
        let mask = if conv_lens.iter().any(|&c| c < l) {
            let m: Vec<f32> = conv_lens
                .iter()
                .flat_map(|&c| (0..l).map(move |j| if j < c { 0.0 } else { f32::NEG_INFINITY }))
                .collect();
            Some(Tensor::from_vec(m, (b, 1, 1, l), x.device())?.to_dtype(x.dtype())?)
        } else {
            None
        };
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(&x, mask.as_ref())?;
        }
        Ok(x)
    }

    /// The pooled, normalised and projected states of `rows` [.., n, d].
    fn head(&self, rows: &Tensor) -> Result<Tensor> {
        self.project(&pool_pairs(rows)?)
    }

    /// The normalised and projected states of pooled rows.
    fn project(&self, pooled: &Tensor) -> Result<Tensor> {
        let x = super::ops::layer_norm(&self.layer_norm, pooled, LN_EPS)?;
        self.projector.forward(&x)
    }

    /// Full windows `mel` [b, n_mels, window] with `conv_lens[i]` real positions each: every
    /// window's projected states [b, L/2, hidden], padding included (training batches).
    pub fn forward(&self, mel: &Tensor, conv_lens: &[usize]) -> Result<Tensor> {
        self.head(&self.encode(mel, conv_lens, None)?)
    }

    /// Qwen2-Audio and Audio Flamingo 3: the audio tokens of windows `mel` [w, n_mels, window]
    /// with `conv_lens[i]` real positions each, every window pooled on its own and the
    /// windows' valid tokens concatenated: [sum of conv_lens[i] / 2, hidden].
    pub fn forward_windows(&self, mel: &Tensor, conv_lens: &[usize]) -> Result<Tensor> {
        let h = self.encode(mel, conv_lens, None)?;
        let mut rows = Vec::with_capacity(conv_lens.len());
        for (i, &c) in conv_lens.iter().enumerate() {
            if c >= 2 {
                rows.push(pool_pairs(&h.get(i)?.narrow(0, 0, c)?)?);
            }
        }
        if rows.is_empty() {
            candle_core::bail!("no window has an audio token");
        }
        self.project(&Tensor::cat(&rows, 0)?)
    }

    /// Qwen2.5-Omni: the audio tokens of chunks `mel` [c, n_mels, 2 * n_window] (zero-padded
    /// tail) of `frame_lens[i]` frames each. Attention stays within a chunk and positions restart
    /// in each; the chunks' valid states are concatenated, then pooled in pairs over the whole
    /// clip (the reference's `pool_indices`), normalised and projected: [n / 2, hidden].
    pub fn forward_chunks(&self, mel: &Tensor, frame_lens: &[usize]) -> Result<Tensor> {
        let conv: Vec<usize> = frame_lens.iter().map(|&n| (n.max(1) - 1) / 2 + 1).collect();
        let h = self.encode(mel, &conv, Some(frame_lens))?;
        let rows = conv
            .iter()
            .enumerate()
            .map(|(i, &c)| h.get(i)?.narrow(0, 0, c))
            .collect::<Result<Vec<_>>>()?;
        self.head(&Tensor::cat(&rows, 0)?)
    }
}
