//! Training a [`LinearModel`]: deterministic SGD on the logistic loss with
//! L2 regularisation, a fixed seed and a fixed number of epochs.
//!
//! Labels are per text, but a positive text (a long e-mail with one
//! injected paragraph) is mostly benign. Training is therefore
//! multiple-instance: round 0 learns from every window of the negatives
//! and each positive text as a whole; each later round retrains from
//! scratch with, for each positive text, its best window under the
//! previous round's model. Every window of a negative text is a negative
//! (identical windows once).
//!
//! Examples are weighted so that no group dominates: a (group, label) pair
//! with more than `group_cap` instances shares a weight of `group_cap`,
//! and the positives together weigh as much as the negatives.

use std::collections::{BTreeMap, HashSet};

use super::{best, features, LinearModel};

/// One labelled text.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    pub text: &'a str,
    pub positive: bool,
    /// Where it comes from (a corpus, a set): the unit of weighting.
    pub group: &'a str,
}

/// Training settings; [`TrainConfig::default`] is what the shipped models
/// use.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Hash buckets are `2^bits`.
    pub bits: u32,
    /// Units per window (at most).
    pub window: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub seed: u64,
    /// Multiple-instance rounds after the first.
    pub rounds: usize,
    pub group_cap: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bits: 18,
            window: 2,
            epochs: 10,
            learning_rate: 0.5,
            l2: 1e-6,
            seed: 0x005e_ed0f_3a1d_e11e,
            rounds: 3,
            group_cap: 50.0,
        }
    }
}

/// Every text cut into units, every unit's features, flat.
struct Featurised {
    feats: Vec<u32>,
    /// Per unit: the end of its features in `feats`.
    unit_end: Vec<usize>,
    /// Per text: its units.
    doc_units: Vec<std::ops::Range<usize>>,
}

impl Featurised {
    fn new(examples: &[Example<'_>], bits: u32) -> Featurised {
        let mut f = Featurised {
            feats: Vec::new(),
            unit_end: Vec::new(),
            doc_units: Vec::with_capacity(examples.len()),
        };
        let mut buf = String::new();
        for e in examples {
            let first = f.unit_end.len();
            for r in features::units(e.text) {
                buf.clear();
                features::normalize_into(&e.text[r], &mut buf);
                features::for_each(&buf, bits, |h| f.feats.push(h));
                f.unit_end.push(f.feats.len());
            }
            f.doc_units.push(first..f.unit_end.len());
        }
        f
    }

    /// A hash of one unit's features: identical units, identical keys.
    fn unit_key(&self, k: usize) -> u64 {
        let (s, t) = self.span(k, k + 1);
        fnv(&self.feats[s..t])
    }

    /// The features of units `a..b`.
    fn span(&self, a: usize, b: usize) -> (usize, usize) {
        let start = if a == 0 { 0 } else { self.unit_end[a - 1] };
        let end = if b == 0 { 0 } else { self.unit_end[b - 1] };
        (start, end)
    }
}

fn fnv(feats: &[u32]) -> u64 {
    feats.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, f| {
        (h ^ u64::from(*f)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One training instance: a slice of the flat features.
#[derive(Clone, Copy)]
struct Instance {
    start: usize,
    end: usize,
    y: f32,
    weight: f32,
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Trains a model on `examples` (see the module docs).
pub fn train(examples: &[Example<'_>], cfg: &TrainConfig) -> LinearModel {
    let bits = cfg.bits.clamp(8, 24);
    let window = cfg.window.clamp(1, 8);
    let data = Featurised::new(examples, bits);

    // Negatives: every window, identical ones once.
    let mut negatives: Vec<(usize, usize, usize)> = Vec::new(); // (example, start, end)
    let mut seen = HashSet::new();
    for (i, _) in examples.iter().enumerate().filter(|(_, e)| !e.positive) {
        let u = data.doc_units[i].clone();
        for a in u.clone() {
            for b in (a + 1)..=(a + window).min(u.end) {
                let (s, t) = data.span(a, b);
                if s == t {
                    continue;
                }
                if seen.insert(fnv(&data.feats[s..t])) {
                    negatives.push((i, s, t));
                }
            }
        }
    }
    // Positives: the units a positive text does not share with any
    // negative (a benchmark's injected copy of a clean record keeps only
    // the injection), from the first such unit to the last; a text that
    // shares none, whole. Round 0 learns from that span.
    let mut clean_units = HashSet::new();
    for (i, _) in examples.iter().enumerate().filter(|(_, e)| !e.positive) {
        for k in data.doc_units[i].clone() {
            clean_units.insert(data.unit_key(k));
        }
    }
    let candidates: Vec<(usize, std::ops::Range<usize>)> = examples
        .iter()
        .enumerate()
        .filter(|(_, e)| e.positive)
        .filter_map(|(i, _)| {
            let u = data.doc_units[i].clone();
            let novel: Vec<usize> = u
                .clone()
                .filter(|k| !clean_units.contains(&data.unit_key(*k)))
                .collect();
            let span = match (novel.first(), novel.last()) {
                (Some(a), Some(b)) => *a..*b + 1,
                _ => u,
            };
            (!span.is_empty()).then_some((i, span))
        })
        .collect();
    let mut positives: Vec<(usize, usize, usize)> = candidates
        .iter()
        .filter_map(|(i, u)| {
            let (s, t) = data.span(u.start, u.end);
            (s < t).then_some((*i, s, t))
        })
        .collect();

    let mut weights = vec![0f32; 1 << bits];
    let mut bias = 0f32;
    for round in 0..=cfg.rounds {
        if round > 0 {
            positives = candidates
                .iter()
                .map(|(i, u)| {
                    let (i, u) = (*i, u.clone());
                    let parts: Vec<(f32, u32)> = u
                        .clone()
                        .map(|k| {
                            let (s, t) = data.span(k, k + 1);
                            let dot: f32 =
                                data.feats[s..t].iter().map(|f| weights[*f as usize]).sum();
                            (dot, (t - s) as u32)
                        })
                        .collect();
                    match best(&parts, window, |d, n| bias + d / (n as f32).sqrt()) {
                        Some((a, len, _)) => {
                            let (s, t) = data.span(u.start + a, u.start + a + len);
                            (i, s, t)
                        }
                        None => (i, 0, 0),
                    }
                })
                .filter(|(_, s, t)| s < t)
                .collect();
        }
        let instances = weigh(examples, &negatives, &positives, cfg.group_cap);
        (weights, bias) = sgd(&data.feats, &instances, bits, cfg);
    }
    quantise(bits, window, bias, &weights)
}

fn weigh(
    examples: &[Example<'_>],
    negatives: &[(usize, usize, usize)],
    positives: &[(usize, usize, usize)],
    cap: f32,
) -> Vec<Instance> {
    let mut counts: BTreeMap<(&str, bool), f32> = BTreeMap::new();
    for &(i, _, _) in negatives.iter().chain(positives) {
        *counts
            .entry((examples[i].group, examples[i].positive))
            .or_default() += 1.0;
    }
    let w = |i: usize| {
        let n = counts[&(examples[i].group, examples[i].positive)];
        (cap / n).min(1.0)
    };
    let neg_total: f32 = negatives.iter().map(|&(i, _, _)| w(i)).sum();
    let pos_total: f32 = positives.iter().map(|&(i, _, _)| w(i)).sum();
    let balance = if pos_total > 0.0 {
        neg_total / pos_total
    } else {
        1.0
    };
    negatives
        .iter()
        .map(|&(i, s, t)| Instance {
            start: s,
            end: t,
            y: 0.0,
            weight: w(i),
        })
        .chain(positives.iter().map(|&(i, s, t)| Instance {
            start: s,
            end: t,
            y: 1.0,
            weight: w(i) * balance,
        }))
        .collect()
}

/// Plain SGD with the L2 term folded into a global scale (Bottou's trick:
/// the weights are `scale · v`, so decay costs nothing per feature).
fn sgd(feats: &[u32], instances: &[Instance], bits: u32, cfg: &TrainConfig) -> (Vec<f32>, f32) {
    let mut v = vec![0f32; 1 << bits];
    let mut scale = 1f32;
    let mut bias = 0f32;
    let mut order: Vec<usize> = (0..instances.len()).collect();
    let mut rng = XorShift(cfg.seed | 1);
    let mut t = 0f32;
    for _ in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            // The modulus is at most `order.len()`, so the value fits.
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for &k in &order {
            let inst = instances[k];
            let f = &feats[inst.start..inst.end];
            let norm = 1.0 / (f.len() as f32).sqrt();
            let dot: f32 = f.iter().map(|h| v[*h as usize]).sum();
            let z = bias + scale * dot * norm;
            let p = 1.0 / (1.0 + (-z).exp());
            let g = (p - inst.y) * inst.weight;
            let lr = cfg.learning_rate / (1.0 + cfg.learning_rate * cfg.l2 * t);
            t += 1.0;
            scale *= 1.0 - lr * cfg.l2;
            if scale < 1e-6 {
                v.iter_mut().for_each(|w| *w *= scale);
                scale = 1.0;
            }
            let step = lr * g * norm / scale;
            for h in f {
                v[*h as usize] -= step;
            }
            bias -= lr * g * 0.1;
        }
    }
    v.iter_mut().for_each(|w| *w *= scale);
    (v, bias)
}

/// `i8` weights with one scale: the largest weight maps to ±127.
fn quantise(bits: u32, window: usize, bias: f32, w: &[f32]) -> LinearModel {
    let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    LinearModel {
        bits,
        window,
        bias,
        scale,
        weights: w
            .iter()
            // Rounded and clamped to the i8 range first, so the cast is exact.
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect(),
    }
}
