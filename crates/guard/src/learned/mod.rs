//! Learned detectors: logistic regression over hashed word and byte
//! n-grams, for the text the rules do not generalise to.
//!
//! Two models ship with the crate, trained by
//! `cargo run -p warden-guard --release --example train` on the
//! development corpora only (see `models/README.md` for the format, the
//! data and how to reproduce the bytes):
//!
//! - [`LinearModel::injection`]: an instruction addressed to the assistant
//!   inside data (a tool result, a document, a page). The output guard
//!   runs it when `guards.output.model` is `on`, and reports
//!   `injection.learned`.
//! - [`LinearModel::poisoning`]: a poisoned tool description. The
//!   registry's manifest scanner runs it at pin and scan time, off the
//!   request path.
//!
//! A text is scored window by window: its units (lines and sentences, see
//! [`features`]) are featurised once, each window of up to
//! [`LinearModel::window`] consecutive units gets
//! `bias + scale · Σ w[feature] / √(number of features)`, and the text's
//! score is its best window's, so an instruction in the middle of a long
//! e-mail, file or table is judged on its own sentences. Inference is a
//! sparse dot product over an `i8` weight table: no allocation per
//! feature, no floating point per feature.

mod features;
mod train;

use std::ops::Range;
use std::sync::OnceLock;

pub use train::{train, Example, TrainConfig};

/// The model file's magic and version.
const MAGIC: &[u8; 4] = b"WLM1";
const HEADER: usize = 16;

static INJECTION_BYTES: &[u8] = include_bytes!("../../models/injection.wlm");
static POISONING_BYTES: &[u8] = include_bytes!("../../models/poisoning.wlm");

/// Score (a probability) at or above which the injection model flags a
/// result's window. Chosen on the development corpora only, from the
/// leave-one-corpus-out scores of the evaluation (`eval` prints the sweep):
/// the lowest threshold whose pooled false-positive rate on benign results
/// stays at or under 2 %.
pub const INJECTION_THRESHOLD: f32 = 0.90;

/// Score at or above which the poisoning model reports a description
/// (`learned.poisoning`, a warning on its own). Chosen the same way, on the
/// pooled leave-one-corpus-out scores of the description corpora: the
/// lowest threshold at which the model adds no benign tool to those the
/// rules flag (held out, it finds no poisoned description the rules miss,
/// so a lower one only costs false positives: 0.9 adds 0.2 points per
/// tool, 0.8 adds 1.8).
pub const POISONING_THRESHOLD: f32 = 0.97;

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("not a Warden linear model (bad magic or version)")]
    Magic,
    #[error("model file is {found} bytes, its header announces {expected}")]
    Length { expected: usize, found: usize },
    #[error("model hash bits {0} outside 8..=24")]
    Bits(u32),
    #[error("model window {0} outside 1..=8")]
    Window(usize),
}

/// A logistic-regression model over hashed features, weights quantised to
/// `i8`.
///
/// File format (`.wlm`, little-endian): `b"WLM1"`, `bits: u8`,
/// `window: u8`, two zero bytes, `bias: f32`, `scale: f32`, then
/// `2^bits` weights as `i8`; a weight's value is `scale · w`. With
/// `bits = 18` a file is 262,160 bytes.
#[derive(Clone, PartialEq)]
pub struct LinearModel {
    bits: u32,
    window: usize,
    bias: f32,
    scale: f32,
    weights: Box<[i8]>,
}

impl std::fmt::Debug for LinearModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearModel")
            .field("bits", &self.bits)
            .field("window", &self.window)
            .field("bias", &self.bias)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

/// The best-scoring window of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowScore {
    /// Byte range of the window in the text scored.
    pub span: Range<usize>,
    /// Probability that the window is what the model detects.
    pub score: f32,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearModel {
    /// Reads a `.wlm` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<LinearModel, ModelError> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC || bytes[6] != 0 || bytes[7] != 0 {
            return Err(ModelError::Magic);
        }
        let bits = u32::from(bytes[4]);
        if !(8..=24).contains(&bits) {
            return Err(ModelError::Bits(bits));
        }
        let window = usize::from(bytes[5]);
        if !(1..=8).contains(&window) {
            return Err(ModelError::Window(window));
        }
        let expected = HEADER + (1usize << bits);
        if bytes.len() != expected {
            return Err(ModelError::Length {
                expected,
                found: bytes.len(),
            });
        }
        let f = |i: usize| f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Ok(LinearModel {
            bits,
            window,
            bias: f(8),
            scale: f(12),
            weights: bytes[HEADER..]
                .iter()
                .map(|b| i8::from_le_bytes([*b]))
                .collect(),
        })
    }

    /// The `.wlm` bytes of this model.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.weights.len());
        out.extend_from_slice(MAGIC);
        // bits ≤ 24 and window ≤ 8: checked at construction.
        out.push(self.bits as u8);
        out.push(self.window as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.extend(self.weights.iter().map(|w| w.to_le_bytes()[0]));
        out
    }

    /// The shipped injection-in-data model.
    pub fn injection() -> &'static LinearModel {
        static M: OnceLock<LinearModel> = OnceLock::new();
        M.get_or_init(|| builtin(INJECTION_BYTES))
    }

    /// The shipped poisoned-description model.
    pub fn poisoning() -> &'static LinearModel {
        static M: OnceLock<LinearModel> = OnceLock::new();
        M.get_or_init(|| builtin(POISONING_BYTES))
    }

    /// How many consecutive units a window holds at most.
    pub fn window(&self) -> usize {
        self.window
    }

    /// SHA-256 of the model's bytes, hex: the same data and configuration
    /// train the same model.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.to_bytes())
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// The best window of `text`, or `None` when it has no words.
    pub fn best_window(&self, text: &str) -> Option<WindowScore> {
        let units = features::units(text);
        let mut buf = String::new();
        let parts: Vec<(i32, u32)> = units
            .iter()
            .map(|r| {
                buf.clear();
                features::normalize_into(&text[r.clone()], &mut buf);
                let mut dot = 0i32;
                let n = features::for_each(&buf, self.bits, |h| {
                    dot += i32::from(self.weights[h as usize]);
                });
                (dot, n)
            })
            .collect();
        let (at, len, logit) = best(&parts, self.window, |dot, n| {
            self.bias + self.scale * dot as f32 / (n as f32).sqrt()
        })?;
        Some(WindowScore {
            span: units[at].start..units[at + len - 1].end,
            score: sigmoid(logit),
        })
    }

    /// The score of `text` as one window (every unit together).
    pub fn score_whole(&self, text: &str) -> f32 {
        let mut buf = String::new();
        let (mut dot, mut n) = (0i64, 0u32);
        for r in features::units(text) {
            buf.clear();
            features::normalize_into(&text[r], &mut buf);
            n += features::for_each(&buf, self.bits, |h| {
                dot += i64::from(self.weights[h as usize]);
            });
        }
        if n == 0 {
            return sigmoid(self.bias);
        }
        sigmoid(self.bias + self.scale * dot as f32 / (n as f32).sqrt())
    }
}

/// The best window over per-unit partial sums: `(start, units, logit)`.
fn best<D: Copy + std::ops::AddAssign + Default>(
    parts: &[(D, u32)],
    window: usize,
    logit: impl Fn(D, u32) -> f32,
) -> Option<(usize, usize, f32)> {
    let mut top: Option<(usize, usize, f32)> = None;
    for start in 0..parts.len() {
        let (mut dot, mut n) = (D::default(), 0u32);
        for (k, (d, m)) in parts[start..].iter().take(window).enumerate() {
            dot += *d;
            n += m;
            if n == 0 {
                continue;
            }
            let z = logit(dot, n);
            if top.is_none_or(|(_, _, t)| z > t) {
                top = Some((start, k + 1, z));
            }
        }
    }
    top
}

/// The shipped models are bytes of this crate, checked by its tests; a
/// file that does not parse is a build defect, and an all-zero model
/// (which flags nothing) is the safe stand-in.
fn builtin(bytes: &[u8]) -> LinearModel {
    LinearModel::from_bytes(bytes).unwrap_or_else(|_| LinearModel {
        bits: 8,
        window: 1,
        bias: -10.0,
        scale: 0.0,
        weights: vec![0; 256].into_boxed_slice(),
    })
}

#[cfg(test)]
#[path = "tests.rs"]
pub(crate) mod tests;
