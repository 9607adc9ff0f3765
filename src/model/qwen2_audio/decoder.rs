//! The Qwen2 language model (`language_model.model.*` and the LM head) taking input
//! embeddings, with a forkable, truncatable KV cache.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::ops::{QLinear, Quantizer};

use crate::model::config::TextConfig;

/// Per-layer keys and values of a prefix, [1, kv_heads, len, head_dim] each.
///
/// Cloning is cheap (tensors are reference counted) and forks: appending always builds new
/// tensors with `Tensor::cat` and truncating only lowers the length, so no fork ever writes into storage
/// another fork can see.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the first `len` positions (no-op when `len >= self.len()`). Cheap: the stored
    /// tensors are cut lazily at the next append.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Drops every position.
    pub fn clear(&mut self) {
        self.layers.clear();
        self.len = 0;
    }

    /// Appends `k`, `v` of layer `i` and returns the full keys and values (contiguous).
    fn append(&mut self, i: usize, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        if self.layers.len() <= i {
            self.layers.resize(i + 1, None);
        }
        let (k, v) = match &self.layers[i] {
            Some((pk, pv)) if self.len > 0 => {
                let pk = pk.narrow(2, 0, self.len)?;
                let pv = pv.narrow(2, 0, self.len)?;
                (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
            }
            _ => (k.contiguous()?, v.contiguous()?),
        };
        self.layers[i] = Some((k.clone(), v.clone()));
        Ok((k, v))
    }
}

/// RMSNorm computed in f32 and cast back before the weight, as the reference does.
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        x.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

/// Rotary tables: inverse frequencies in f32; cos/sin built per call in f32, then cast.
struct Rope {
    inv_freq: Tensor,
}

impl Rope {
    fn new(cfg: &TextConfig, device: &Device) -> Result<Self> {
        let dim = cfg.head_size();
        let base = cfg.rope_base() as f32;
        let inv: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / dim as f32))
            .collect();
        let n = inv.len();
        Ok(Self {
            inv_freq: Tensor::from_vec(inv, (1, n), device)?,
        })
    }

    /// cos and sin [t, head_dim / 2] for positions `offset..offset + t`, in `dtype`.
    fn tables(&self, offset: usize, t: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let pos: Vec<f32> = (offset..offset + t).map(|p| p as f32).collect();
        let pos = Tensor::from_vec(pos, (t, 1), self.inv_freq.device())?;
        let freqs = pos.broadcast_mul(&self.inv_freq)?;
        Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
    }
}

/// Grouped-query self-attention with q/k/v bias (`self_attn`).
struct Attention {
    q_proj: QLinear,
    k_proj: QLinear,
    v_proj: QLinear,
    o_proj: QLinear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(cfg: &TextConfig, vb: VarBuilder, q: &Quantizer) -> Result<Self> {
        let (h, hd, nh, nkv) = (
            cfg.hidden_size,
            cfg.head_size(),
            cfg.num_attention_heads,
            cfg.kv_heads(),
        );
        Ok(Self {
            q_proj: q.linear(h, nh * hd, true, vb.pp("q_proj"))?,
            k_proj: q.linear(h, nkv * hd, true, vb.pp("k_proj"))?,
            v_proj: q.linear(h, nkv * hd, true, vb.pp("v_proj"))?,
            o_proj: q.linear(nh * hd, h, false, vb.pp("o_proj"))?,
            heads: nh,
            kv_heads: nkv,
            head_dim: hd,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        step: &Step,
        cache: &mut KvCache,
        layer: usize,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let q = self.heads_of(self.q_proj.forward(x)?, b, t, self.heads)?;
        let k = self.heads_of(self.k_proj.forward(x)?, b, t, self.kv_heads)?;
        let v = self.heads_of(self.v_proj.forward(x)?, b, t, self.kv_heads)?;
        let q = super::ops::rope(&q, &step.cos, &step.sin)?;
        let k = super::ops::rope(&k, &step.cos, &step.sin)?;
        let (k, v) = cache.append(layer, k, v)?;
        let o = self.attend(&q, &k, &v, step.mask.as_ref())?;
        self.o_proj.forward(&o)
    }

    /// One new position for each of `b` sequences: `x` [b, 1, hidden], row `i` after the
    /// positions of `caches[i]`, rotated by `ropes[i]`. The projections run on all rows at once
    /// (the weights are read once per step, not once per sequence); attention reads each
    /// sequence's own cache, so sequences of different lengths need no padding or mask.
    fn forward_batch(
        &self,
        x: &Tensor,
        ropes: &[(Tensor, Tensor)],
        caches: &mut [KvCache],
        layer: usize,
    ) -> Result<Tensor> {
        let (b, _, _) = x.dims3()?;
        let q = self.heads_of(self.q_proj.forward_decode(x)?, b, 1, self.heads)?;
        let k = self.heads_of(self.k_proj.forward_decode(x)?, b, 1, self.kv_heads)?;
        let v = self.heads_of(self.v_proj.forward_decode(x)?, b, 1, self.kv_heads)?;
        let mut outs = Vec::with_capacity(b);
        for (i, (cache, (cos, sin))) in caches.iter_mut().zip(ropes).enumerate() {
            let qi = super::ops::rope(&q.narrow(0, i, 1)?, cos, sin)?;
            let ki = super::ops::rope(&k.narrow(0, i, 1)?, cos, sin)?;
            let (ki, vi) = cache.append(layer, ki, v.narrow(0, i, 1)?.contiguous()?)?;
            outs.push(self.attend(&qi, &ki, &vi, None)?);
        }
        self.o_proj.forward_decode(&Tensor::cat(&outs, 0)?)
    }

    /// [b, t, n * head_dim] projections as [b, n, t, head_dim] heads.
    fn heads_of(&self, y: Tensor, b: usize, t: usize, n: usize) -> Result<Tensor> {
        y.reshape((b, t, n, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Scaled dot-product attention of queries [b, heads, t, d] over keys and values
    /// [b, kv_heads, s, d] with an additive f32 `mask` [t, s]: [b, t, heads * d].
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, t, _) = q.dims4()?;
        let rep = self.heads / self.kv_heads;
        let (k, v) = (repeat_kv(k, rep)?, repeat_kv(v, rep)?);
        let scale = (self.head_dim as f64).powf(-0.5);
        let w = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
        let w = match mask {
            Some(m) => w.broadcast_add(m)?,
            None => w,
        };
        let w = super::ops::softmax_last_dim(&w)?.to_dtype(q.dtype())?;
        w.matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))
    }
}

/// Repeats each key/value head `n` times (head i of the queries reads kv head i / n).
fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return x.contiguous();
    }
    let (b, h, s, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, h, n, s, d))?
        .reshape((b, h * n, s, d))
}

/// SwiGLU MLP (`mlp`).
struct Mlp {
    gate_proj: QLinear,
    up_proj: QLinear,
    down_proj: QLinear,
}

impl Mlp {
    fn load(cfg: &TextConfig, vb: VarBuilder, q: &Quantizer) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: q.linear(h, i, false, vb.pp("gate_proj"))?,
            up_proj: q.linear(h, i, false, vb.pp("up_proj"))?,
            down_proj: q.linear(i, h, false, vb.pp("down_proj"))?,
        })
    }

    /// The MLP; `decode` rows (one per sequence of a batch) use [`QLinear::forward_decode`].
    fn forward(&self, x: &Tensor, decode: bool) -> Result<Tensor> {
        let lin = |l: &QLinear, x: &Tensor| {
            if decode {
                l.forward_decode(x)
            } else {
                l.forward(x)
            }
        };
        let g = lin(&self.gate_proj, x)?.silu()?;
        lin(&self.down_proj, &(g * lin(&self.up_proj, x)?)?)
    }
}

/// One decoder layer (`layers.N`).
struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    fn load(cfg: &TextConfig, vb: VarBuilder, q: &Quantizer) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        Ok(Self {
            self_attn: Attention::load(cfg, vb.pp("self_attn"), q)?,
            mlp: Mlp::load(cfg, vb.pp("mlp"), q)?,
            input_layernorm: RmsNorm::load(h, eps, vb.pp("input_layernorm"))?,
            post_attention_layernorm: RmsNorm::load(h, eps, vb.pp("post_attention_layernorm"))?,
        })
    }

    /// The layer around an attention pass `attn` (of the normed input); `decode` as in
    /// [`Mlp::forward`].
    fn forward(
        &self,
        x: &Tensor,
        decode: bool,
        attn: impl FnOnce(&Attention, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let h = attn(&self.self_attn, &self.input_layernorm.forward(x)?)?;
        let x = (x + h)?;
        let h = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x)?, decode)?;
        x + h
    }
}

/// What every layer of one forward call shares: RoPE tables and the causal mask.
struct Step {
    cos: Tensor,
    sin: Tensor,
    /// Additive f32 mask [t, offset + t]; none for a single new position.
    mask: Option<Tensor>,
}

/// The Qwen2 decoder plus LM head.
pub struct TextModel {
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: QLinear,
    rope: Rope,
    /// The activations' dtype (the embedding table may be stored narrower).
    dtype: DType,
}

impl TextModel {
    /// Loads the decoder from `vb_model` (`language_model.model`) and the head from `vb_head`
    /// (`language_model.lm_head`). A stored head is always used (transformers 5 saves one even
    /// for tied configs); without one, `tied` reuses the embedding, otherwise the missing
    /// tensor is an error.
    pub fn load(
        cfg: &TextConfig,
        tied: bool,
        vb_model: VarBuilder,
        vb_head: VarBuilder,
        q: &Quantizer,
    ) -> Result<Self> {
        let dtype = vb_model.dtype();
        // With quantised weights the embedding table is kept in f16 (half of f32; a 7B's is
        // 2.6 GB in f32), read from the checkpoint straight into f16 (a bf16 table never
        // passes through f32): rows are read in f16 and widened, which the quality tests measure.
        let embed_vb = match q.kind() {
            super::ops::Quant::None => vb_model.pp("embed_tokens"),
            _ => vb_model.pp("embed_tokens").to_dtype(DType::F16),
        };
        let embed_tokens = candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, embed_vb)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::load(cfg, vb_model.pp("layers").pp(i), q))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if tied && !vb_head.contains_tensor("weight") {
            q.quantize_linear(
                Linear::new(embed_tokens.embeddings().clone(), None),
                "lm_head (tied)",
            )?
        } else {
            q.linear(cfg.hidden_size, cfg.vocab_size, false, vb_head)?
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb_model.pp("norm"))?,
            lm_head,
            dtype,
            rope: Rope::new(cfg, vb_model.device())?,
        })
    }

    /// Token embeddings [len, hidden] of `ids` (a 1-D u32 tensor).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed_tokens.forward(ids)?.to_dtype(self.dtype)
    }

    /// Runs `embeds` [1, t, hidden] after the cache's positions and appends to the cache;
    /// returns the final hidden states [t, hidden] (after the last norm), or only the last
    /// position's when `last_only`.
    pub fn hidden(&self, embeds: &Tensor, cache: &mut KvCache, last_only: bool) -> Result<Tensor> {
        let (_, t, _) = embeds.dims3()?;
        let offset = cache.len();
        let (cos, sin) = self.rope.tables(offset, t, embeds.dtype())?;
        let mask = if t > 1 {
            let total = offset + t;
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..total).map(move |j| {
                        if j <= offset + i {
                            0.0
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (t, total), embeds.device())?)
        } else {
            None
        };
        let step = Step { cos, sin, mask };
        // Work on a fork so that a failing call leaves the caller's cache untouched.
        let mut work = cache.clone();
        let mut x = embeds.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, false, |a, x| a.forward(x, &step, &mut work, i))?;
        }
        work.len = offset + t;
        *cache = work;
        let x = if last_only { x.narrow(1, t - 1, 1)? } else { x };
        self.norm.forward(&x.squeeze(0)?)
    }

    /// Logits in f32 of final hidden states [n, hidden] -> [n, vocab].
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)?.to_dtype(DType::F32)
    }

    /// One decode step of several sequences: `embeds` [b, 1, hidden], row `i` the next input of
    /// the sequence in `caches[i]`; appends to every cache and returns f32 logits [b, vocab].
    /// Each row's logits are those of decoding its sequence alone (the same kernels per row);
    /// on error no cache changes.
    pub fn step_batch(&self, embeds: &Tensor, caches: &mut [KvCache]) -> Result<Tensor> {
        let ropes = caches
            .iter()
            .map(|c| self.rope.tables(c.len(), 1, embeds.dtype()))
            .collect::<Result<Vec<_>>>()?;
        let mut work = caches.to_vec();
        let mut x = embeds.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, true, |a, x| a.forward_batch(x, &ropes, &mut work, i))?;
        }
        for w in &mut work {
            w.len += 1;
        }
        caches.clone_from_slice(&work);
        let h = self.norm.forward(&x.squeeze(1)?)?;
        self.lm_head.forward_decode(&h)?.to_dtype(DType::F32)
    }
}
