//! Ops with a fast inference kernel and a differentiable form: candle-nn's fused softmax,
//! layer norm and rotary kernels have no backward pass, so when gradients are being tracked
//! (training on `Var` weights) the same maths is written with plain tensor ops instead. And the
//! linear layers, dense or quantised at load ([`Quantizer`]).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Result, Tensor, D};
use candle_nn::{LayerNorm, Linear, Module};

/// Softmax over the last dimension.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.track_op() {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// Rotary embedding of `x` [b, heads, t, head_dim] with tables [t, head_dim / 2].
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if x.track_op() {
        candle_nn::rotary_emb::rope_slow(x, cos, sin)
    } else {
        candle_nn::rotary_emb::rope(x, cos, sin)
    }
}

/// `nn.LayerNorm` with weight and bias over the last dimension.
pub(crate) fn layer_norm(ln: &LayerNorm, x: &Tensor, eps: f64) -> Result<Tensor> {
    if !(x.track_op() || ln.weight().track_op()) {
        return ln.forward(x);
    }
    let x = x.contiguous()?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let x = x.broadcast_sub(&mean)?;
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    let x = x.broadcast_div(&(var + eps)?.sqrt()?)?;
    let x = x.broadcast_mul(ln.weight())?;
    match ln.bias() {
        Some(b) => x.broadcast_add(b),
        None => Ok(x),
    }
}

/// Weight quantisation at load (`--quant`): the linear layers' weights of the decoder and the
/// audio encoder are stored as llama.cpp-style blocks and multiplied by f32 activations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quant {
    /// The checkpoint's weights as they are (in the model dtype).
    #[default]
    None,
    /// 8-bit blocks of 32 (8.5 bits per weight).
    Q8_0,
    /// 6-bit k-quants, super-blocks of 256.
    Q6k,
    /// 5-bit k-quants.
    Q5k,
    /// 4-bit k-quants.
    Q4k,
}

/// The `--quant` values.
pub const QUANT_NAMES: &[&str] = &["none", "q8_0", "q6k", "q5k", "q4k"];

impl Quant {
    /// Parses a `--quant` value.
    pub fn parse(s: &str) -> std::result::Result<Quant, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Quant::None),
            "q8_0" | "q8" => Ok(Quant::Q8_0),
            "q6k" | "q6_k" => Ok(Quant::Q6k),
            "q5k" | "q5_k" => Ok(Quant::Q5k),
            "q4k" | "q4_k" => Ok(Quant::Q4k),
            other => Err(format!(
                "unknown quantisation {other:?}; use one of {}",
                QUANT_NAMES.join(", ")
            )),
        }
    }

    /// The `--quant` name.
    pub fn name(self) -> &'static str {
        match self {
            Quant::None => "none",
            Quant::Q8_0 => "q8_0",
            Quant::Q6k => "q6k",
            Quant::Q5k => "q5k",
            Quant::Q4k => "q4k",
        }
    }

    /// Bytes per weight of the linear layers' storage (`None`: `dense` bytes).
    pub fn bytes_per_weight(self, dense: f64) -> f64 {
        match self {
            Quant::None => dense,
            Quant::Q8_0 => 34.0 / 32.0,
            Quant::Q6k => 210.0 / 256.0,
            Quant::Q5k => 176.0 / 256.0,
            Quant::Q4k => 144.0 / 256.0,
        }
    }

    /// Whether candle keeps a second, repacked copy of an `[n, k]` weight of this type for its
    /// fast decode kernels on this CPU (it builds it at the weight's first one-row product and
    /// keeps the compact blocks too, so such weights take twice their size once the model has
    /// run). The rule is candle-core 0.11.1's (`quantized/repack_x86.rs`, `select` and `level`):
    /// on x86-64 with AVX2, q4k always, q6k for products of several rows (batched decoding),
    /// q8_0 only with AVX-VNNI or AVX512-VNNI and unless `MISTRALRS_FORCE_AVX2=1`; the weight's
    /// rows a multiple of 16 and its width of 256. Elsewhere (aarch64 packs every type) assumed
    /// always, so that the memory estimate errs high.
    pub fn repacked(self, n: usize, k: usize) -> bool {
        if self == Quant::None || n % 16 != 0 || k % 256 != 0 {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
                return false;
            }
            let forced = std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1");
            let vnni = (is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vnni"))
                || is_x86_feature_detected!("avxvnni");
            match self {
                Quant::Q4k | Quant::Q6k => true,
                Quant::Q8_0 => vnni && !forced,
                _ => false,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        true
    }

    /// The block type, then the one used for a tensor whose width the first does not divide
    /// (k-quants need multiples of 256; the fallback, q8_0, 32). The fallback is q8_0 for all:
    /// q4_0 weights move the letter probabilities of the small demo models by 0.1, and candle's
    /// q5_0 / q4_1 kernels need an even number of blocks per row. The paper's 7B models (widths
    /// 3584, 18944, 1280, 5120) never fall back.
    fn types(self) -> Option<(GgmlDType, GgmlDType)> {
        let k = match self {
            Quant::None => return None,
            Quant::Q8_0 => GgmlDType::Q8_0,
            Quant::Q6k => GgmlDType::Q6K,
            Quant::Q5k => GgmlDType::Q5K,
            Quant::Q4k => GgmlDType::Q4K,
        };
        Some((k, GgmlDType::Q8_0))
    }
}

/// Quantises weights as the model is built and remembers the tensors that could not take the
/// asked-for block type.
#[derive(Default)]
pub struct Quantizer {
    quant: Quant,
    fell_back: std::sync::Mutex<Vec<String>>,
    cache: Option<crate::model::quant_cache::QuantCache>,
}

impl Quantizer {
    /// A quantizer of kind `quant`.
    pub fn new(quant: Quant) -> Self {
        Self {
            quant,
            fell_back: Default::default(),
            cache: None,
        }
    }

    /// Reads blocks from `cache` where it has them and records the ones quantised here.
    pub fn with_cache(mut self, cache: crate::model::quant_cache::QuantCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The kind.
    pub fn kind(&self) -> Quant {
        self.quant
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&crate::model::quant_cache::QuantCache> {
        self.cache.as_ref()
    }

    /// The cached blocks of weight `name` ([out_dim, in_dim]) as a layer with `bias`.
    fn cached(
        &self,
        name: &str,
        out_dim: usize,
        in_dim: usize,
        bias: Option<Tensor>,
        dev: &candle_core::Device,
    ) -> Result<Option<QLinear>> {
        let Some(q) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&format!("{name}.weight"), dev))
        else {
            return Ok(None);
        };
        if q.shape().dims() != [out_dim, in_dim] {
            return Ok(None);
        }
        let q = std::sync::Arc::new(q);
        Ok(Some(QLinear::Quant {
            w: QMatMul::from_arc(q.clone())?,
            blocks: q,
            b: bias.map(|b| b.to_dtype(DType::F32)).transpose()?,
        }))
    }

    /// What fell back, as one message (`None` when nothing did).
    pub fn fallback_note(&self) -> Option<String> {
        let list = self.fell_back.lock().unwrap_or_else(|p| p.into_inner());
        if list.is_empty() {
            return None;
        }
        let shown: Vec<&str> = list.iter().take(4).map(String::as_str).collect();
        Some(format!(
            "--quant {}: {} weight(s) have a width the block size does not divide and use a \
             smaller block type: {}{}",
            self.quant.name(),
            list.len(),
            shown.join("; "),
            if list.len() > 4 { "; ..." } else { "" }
        ))
    }

    /// A linear layer `in_dim -> out_dim` from `vb` (`weight`, and `bias` when `bias`),
    /// quantised when asked for.
    pub fn linear(
        &self,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        vb: candle_nn::VarBuilder,
    ) -> Result<QLinear> {
        let name = vb.prefix();
        if self.quant != Quant::None && vb.contains_tensor("weight") {
            let b = if bias {
                Some(vb.get(out_dim, "bias")?)
            } else {
                None
            };
            if let Some(l) = self.cached(&name, out_dim, in_dim, b, vb.device())? {
                return Ok(l);
            }
        }
        let dense = if bias {
            candle_nn::linear(in_dim, out_dim, vb.clone())?
        } else {
            candle_nn::linear_no_bias(in_dim, out_dim, vb.clone())?
        };
        self.quantize_linear(dense, &name)
    }

    /// `dense` quantised when asked for (`name` for messages).
    pub fn quantize_linear(&self, dense: Linear, name: &str) -> Result<QLinear> {
        let Some((want, small)) = self.quant.types() else {
            return Ok(QLinear::Dense(dense));
        };
        let w = dense.weight();
        let (out_dim, width) = w.dims2()?;
        if let Some(l) = self.cached(name, out_dim, width, dense.bias().cloned(), w.device())? {
            return Ok(l);
        }
        let kind = if width % want.block_size() == 0 {
            want
        } else if width % small.block_size() == 0 {
            self.note(format!("{name} ({width} wide) as {small:?}"));
            small
        } else {
            self.note(format!("{name} ({width} wide) unquantised"));
            return Ok(QLinear::Dense(dense));
        };
        let q = std::sync::Arc::new(QTensor::quantize(&w.to_dtype(DType::F32)?, kind)?);
        if let Some(c) = &self.cache {
            c.put(&format!("{name}.weight"), q.clone());
        }
        Ok(QLinear::Quant {
            w: QMatMul::from_arc(q.clone())?,
            blocks: q,
            b: dense.bias().map(|b| b.to_dtype(DType::F32)).transpose()?,
        })
    }

    fn note(&self, what: String) {
        self.fell_back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }
}

/// A linear layer with dense or quantised weights.
#[derive(Debug, Clone)]
pub enum QLinear {
    /// Weights in the model dtype.
    Dense(Linear),
    /// Quantised blocks (f32 activations) and an f32 bias.
    Quant {
        /// The blocks, multiplied with activations quantised to blocks too (one row: decoding).
        w: QMatMul,
        /// The same blocks, dequantised for a many-row product (prefill, the audio encoder).
        blocks: std::sync::Arc<QTensor>,
        /// The bias.
        b: Option<Tensor>,
    },
}

impl QLinear {
    /// The product for decode rows, one per sequence of a batch: quantised weights always use
    /// the block dot products (as a single decode row does), so that each row's result is the
    /// one it gets decoded alone; candle's kernel reads each weight block once per tile of rows.
    pub fn forward_decode(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            QLinear::Dense(l) => l.forward(x),
            QLinear::Quant { w, b, .. } => {
                let y = w.forward(&x.contiguous()?)?;
                match b {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
        }
    }
}

impl Module for QLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            QLinear::Quant { blocks, b, .. } if x.elem_count() > x.dim(D::Minus1)? => {
                // Many rows: the weights dequantised once and an f32 product, so that only the
                // weights are rounded (the block dot products also round the activations to
                // 8 bits, which moves the sharp attention of small models by up to 0.09 in
                // letter probability). One row (a decode step): the block dot products, whose
                // speed is the point of quantising.
                let full = blocks.dequantize(x.device())?;
                let y = x.broadcast_matmul(&full.t()?)?;
                match b {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
            _ => self.forward_decode(x),
        }
    }
}
