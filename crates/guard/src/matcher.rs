//! The seam between detectors and the engine that finds their patterns.
//!
//! A [`Matcher`] runs many patterns over a text and reports leftmost-first
//! candidates per lane; the caller's check accepts or rejects each one, and
//! a rejected candidate lets lower-priority patterns of the same lane try
//! the same position. [`AutomataMatcher`] is the backend, on
//! `regex-automata`'s meta regex (lazy DFA):
//!
//! - **One pass.** The patterns of every ungated lane (numbers, injection
//!   phrasing) and the keywords of the gated lanes form one automaton, and
//!   one pass over the text finds every start at which any of them matches.
//!   Each ungated lane's candidates are then judged as that lane's own
//!   search would judge them. Separate passes cost a pass each; the joint
//!   automaton measured about as fast per byte as any one of them
//!   (`examples/profile`, callgrind: ~7 instructions per byte on prose,
//!   code, JSON and documentation alike).
//! - **Windows.** A gated lane (secrets, e-mail) runs only in windows
//!   around its keywords' hits, `lead` bytes before and `reach` after.
//!   Gating pays only for distinctive keywords (`AKIA`, `ghp_`, `@`): the
//!   injection rules' words ("system", "function", "send") opened windows
//!   over nearly all of ordinary documentation, so that lane is ungated.
//! - **Keywords** run on the lazy DFA rather than aho-corasick: with ~100
//!   case-insensitive keywords aho-corasick falls back to its generic DFA
//!   loop, which measured ~40% more instructions per byte.
//!
//! [`AutomataMatcher::exhaustive`] runs every lane over the whole text; the
//! tests hold the gated matcher to it on every public corpus. Another
//! backend (vectorscan) would implement the same trait.

use std::ops::Range;
use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};

use crate::error::GuardError;

/// One pattern as the detectors hand it to a backend.
#[derive(Debug, Clone)]
pub struct PatternSpec<'a> {
    /// regex-automata syntax; an optional group named `s` marks the part to report.
    pub regex: &'a str,
    /// Lowercase ASCII literals, one of which occurs in every match (matched
    /// case-insensitively; a space stands for any run of whitespace); empty
    /// when the pattern has no such literal.
    pub keywords: &'a [&'a str],
    /// The longest a match can be, in bytes.
    pub reach: usize,
    /// The most a match can extend before the start of its keyword, in
    /// bytes (at most `reach`; `reach` when unknown). A keyword hit opens a
    /// window from `lead` bytes before its start to `reach` bytes after its
    /// end.
    pub lead: usize,
    /// Every match starts with one of the keywords after a word boundary
    /// (`(?-u:\b)` then the keyword): the window starts at the hit, and a
    /// hit right after an ASCII word character (inside a token, a base64
    /// blob) opens none for this pattern when the keyword itself starts
    /// with one. `lead` is then ignored.
    pub word_start: bool,
    /// Patterns of a lane compete leftmost-first in the order given.
    pub lane: usize,
}

/// A match a backend proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Index into the pattern list the matcher was built from.
    pub pattern: usize,
    pub span: Range<usize>,
    /// The span of the group named `s`, or the whole match.
    pub group: Range<usize>,
}

/// A multi-pattern matching engine.
pub trait Matcher: Send + Sync {
    /// Runs the lanes for which `lanes(lane)` is true over `haystack`.
    /// `accept` returns false to reject a candidate; the matcher then tries
    /// the later patterns of the lane at the same start, and otherwise
    /// resumes one character further on.
    fn find(
        &self,
        haystack: &str,
        lanes: &dyn Fn(usize) -> bool,
        accept: &mut dyn FnMut(Candidate) -> bool,
    );

    /// Builds ahead of time what [`Matcher::find`] over these lanes would
    /// build on first use, so that configuration load pays for it and
    /// reports its errors. Nothing by default.
    fn prepare(&self, _lanes: &dyn Fn(usize) -> bool) -> Result<(), GuardError> {
        Ok(())
    }
}

struct LaneEngine {
    lane: usize,
    regex: Regex,
    /// Global pattern index of this lane's pattern 0.
    first: usize,
    len: usize,
    /// Per local pattern with a group `s`: the pattern alone, compiled, and
    /// the index of `s` in it. Captures come from it rather than from the
    /// lane's automaton: the capture engines (PikeVM, backtracker) size
    /// their per-search tables by every state and group of the regex they
    /// run, so a large lane made one capture cost ~1 M instructions of
    /// table clearing.
    group: Vec<Option<(Regex, usize)>>,
    /// True when every pattern has keywords: the lane runs only in windows
    /// around keyword hits.
    gated: bool,
}

/// Where a keyword hit opens a window: the lane (a position in `lanes`),
/// how far before the hit's start and how far after its end, and whether
/// only at a word start (see [`PatternSpec::word_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    lane: usize,
    lead: usize,
    reach: usize,
    word_start: bool,
}

/// What a pattern of a front automaton stands for.
#[derive(Debug, Clone, Copy)]
enum Front {
    /// Pattern `local` of the ungated lane at position `lane`.
    Lane { lane: usize, local: usize },
    /// Keyword `k` (an index into the keyword targets).
    Keyword(usize),
}

/// One automaton over the patterns of some ungated lanes, then the
/// keywords, and what each of its patterns stands for.
type FrontAutomaton = Option<(Regex, Vec<Front>)>;

/// At most this many ungated lanes get front automata (one per subset).
const MAX_FRONT_LANES: usize = 4;

/// regex-automata backend.
pub struct AutomataMatcher {
    lanes: Vec<LaneEngine>,
    /// One keyword automaton for all gated lanes; per keyword, where it
    /// opens windows.
    keywords: Option<(Regex, Vec<Vec<Target>>)>,
    /// The keywords as regex syntax, in the keyword automaton's order.
    keyword_syntax: Vec<String>,
    /// Positions (in `lanes`) of the ungated lanes, and their patterns.
    ungated: Vec<(usize, Vec<String>)>,
    /// The enabled ungated lanes' patterns followed by the keywords (when
    /// a gated lane runs), as one automaton: one pass over the text finds
    /// all of them (the automaton of all measured nearly as fast per byte
    /// as each alone). Indexed by a mask: bit i for `ungated[i]`, the bit
    /// above them for the keywords. The all-lanes one is built at
    /// construction, those the configuration uses by [`Matcher::prepare`],
    /// any other on first use.
    fronts: Vec<OnceLock<FrontAutomaton>>,
    /// Bytes the gated lanes searched in windows, for tests that count
    /// the work a text costs.
    #[cfg(test)]
    pub(crate) windowed: std::sync::atomic::AtomicUsize,
}

impl AutomataMatcher {
    pub fn new(patterns: &[PatternSpec<'_>]) -> Result<AutomataMatcher, GuardError> {
        AutomataMatcher::build(patterns, false)
    }

    /// A matcher that runs every lane over the whole text and ignores
    /// keywords: slow, and by construction free of gating misses. Tests
    /// compare [`AutomataMatcher::new`] with it.
    pub fn exhaustive(patterns: &[PatternSpec<'_>]) -> Result<AutomataMatcher, GuardError> {
        AutomataMatcher::build(patterns, true)
    }

    fn build(
        patterns: &[PatternSpec<'_>],
        exhaustive: bool,
    ) -> Result<AutomataMatcher, GuardError> {
        let mut lane_ids: Vec<usize> = patterns.iter().map(|p| p.lane).collect();
        lane_ids.sort_unstable();
        lane_ids.dedup();
        let mut lanes = Vec::new();
        let mut words: Vec<&str> = Vec::new();
        let mut opens: Vec<Vec<Target>> = Vec::new();
        for lane in lane_ids {
            let members: Vec<(usize, &PatternSpec)> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| p.lane == lane)
                .collect();
            let first = members[0].0;
            if members
                .iter()
                .enumerate()
                .any(|(i, (g, _))| *g != first + i)
            {
                return Err(GuardError::Patterns(format!(
                    "patterns of lane {lane} must be contiguous"
                )));
            }
            let regexes: Vec<&str> = members.iter().map(|(_, p)| p.regex).collect();
            let regex = build_regex(&regexes)?;
            let mut group = Vec::with_capacity(members.len());
            for (_, p) in &members {
                // Only patterns that can have the group are compiled alone.
                if !p.regex.contains("<s>") {
                    group.push(None);
                    continue;
                }
                let single = build_regex(&[p.regex])?;
                let index = PatternID::new(0)
                    .ok()
                    .and_then(|pid| single.group_info().to_index(pid, "s"));
                group.push(index.map(|i| (single, i)));
            }
            let gated = !exhaustive && members.iter().all(|(_, p)| !p.keywords.is_empty());
            let position = lanes.len();
            if gated {
                for (_, p) in &members {
                    let target = Target {
                        lane: position,
                        lead: if p.word_start { 0 } else { p.lead.min(p.reach) },
                        reach: p.reach,
                        word_start: p.word_start,
                    };
                    for k in p.keywords {
                        let i = match words.iter().position(|w| w == k) {
                            Some(i) => i,
                            None => {
                                words.push(k);
                                opens.push(Vec::new());
                                words.len() - 1
                            }
                        };
                        widen(&mut opens[i], target);
                    }
                }
            }
            lanes.push(LaneEngine {
                lane,
                regex,
                first,
                len: members.len(),
                group,
                gated,
            });
        }
        let keywords = if words.is_empty() {
            None
        } else {
            // Leftmost-first with the longer keywords first: a keyword found
            // inside a longer one at the same start must open the longer
            // one's windows too, so each keyword gets the targets of every
            // keyword it contains (its windows cover theirs). Overlaps at
            // other starts are found by resuming one byte after each hit.
            let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
            let mut merged = opens.clone();
            for (i, outer) in lower.iter().enumerate() {
                for (j, inner) in lower.iter().enumerate() {
                    if i != j && outer.contains(inner.as_str()) {
                        for t in &opens[j] {
                            // The inner keyword lies inside the outer hit,
                            // where a word boundary may be although there
                            // is none before the outer one.
                            let t = Target {
                                word_start: false,
                                ..*t
                            };
                            widen(&mut merged[i], t);
                        }
                    }
                }
            }
            let mut order: Vec<usize> = (0..words.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(words[i].len()));
            let regexes: Vec<String> = order
                .iter()
                .map(|&i| format!("(?i-u){}", escape(words[i])))
                .collect();
            let targets = order.iter().map(|&i| merged[i].clone()).collect();
            Some((regexes, targets))
        };
        let ungated: Vec<(usize, Vec<String>)> = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.gated)
            .map(|(position, lane)| {
                let syntax = patterns[lane.first..lane.first + lane.len]
                    .iter()
                    .map(|p| p.regex.to_owned())
                    .collect();
                (position, syntax)
            })
            .collect();
        let (keyword_syntax, keywords) = match keywords {
            Some((words, targets)) => {
                let regex = build_regex(&words)?;
                (words, Some((regex, targets)))
            }
            None => (Vec::new(), None),
        };
        let fronts = if ungated.len() <= MAX_FRONT_LANES {
            (0..2usize << ungated.len())
                .map(|_| OnceLock::new())
                .collect()
        } else {
            Vec::new()
        };
        let matcher = AutomataMatcher {
            lanes,
            keywords,
            keyword_syntax,
            ungated,
            fronts,
            #[cfg(test)]
            windowed: std::sync::atomic::AtomicUsize::new(0),
        };
        // Every lane on: the largest automaton, so that its errors surface
        // here.
        matcher.prepare(&|_| true)?;
        Ok(matcher)
    }

    /// The front automaton of `mask` (see [`AutomataMatcher::fronts`]).
    fn build_front(&self, mask: usize) -> Result<FrontAutomaton, GuardError> {
        let mut syntax: Vec<&str> = Vec::new();
        let mut meaning = Vec::new();
        for (bit, (lane, patterns)) in self.ungated.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                for (local, p) in patterns.iter().enumerate() {
                    syntax.push(p);
                    meaning.push(Front::Lane { lane: *lane, local });
                }
            }
        }
        if syntax.is_empty() {
            return Ok(None);
        }
        if mask & (1 << self.ungated.len()) != 0 {
            for (k, w) in self.keyword_syntax.iter().enumerate() {
                syntax.push(w);
                meaning.push(Front::Keyword(k));
            }
        }
        Ok(Some((build_regex(&syntax)?, meaning)))
    }

    /// Which lanes run, whether any gated and any ungated one does, and
    /// the front automaton's index for them (`None`: no ungated lane runs,
    /// or there are too many for front automata).
    fn plan(&self, lanes: &dyn Fn(usize) -> bool) -> Plan {
        let enabled: Vec<bool> = self.lanes.iter().map(|l| lanes(l.lane)).collect();
        let on = |gated: bool| {
            self.lanes
                .iter()
                .zip(&enabled)
                .any(|(l, e)| *e && l.gated == gated)
        };
        let gated_on = on(true);
        let mut mask = usize::from(gated_on && self.keywords.is_some()) << self.ungated.len();
        for (bit, (lane, _)) in self.ungated.iter().enumerate() {
            if enabled.get(*lane).copied().unwrap_or(false) {
                mask |= 1 << bit;
            }
        }
        let front = (on(false) && mask < self.fronts.len()).then_some(mask);
        Plan {
            enabled,
            gated_on,
            front,
        }
    }

    /// The front automaton of `mask`. A subset's automaton builds from
    /// patterns the full one compiled, so it cannot fail where that did
    /// not; if it did, the lanes run in passes of their own.
    fn front(&self, mask: usize) -> Option<&(Regex, Vec<Front>)> {
        self.fronts
            .get(mask)?
            .get_or_init(|| self.build_front(mask).ok().flatten())
            .as_ref()
    }
}

/// What one scan runs: see [`AutomataMatcher::plan`].
struct Plan {
    enabled: Vec<bool>,
    gated_on: bool,
    front: Option<usize>,
}

/// Leftmost-first over many patterns, with room for large automata.
fn build_regex<P: AsRef<str>>(patterns: &[P]) -> Result<Regex, GuardError> {
    Regex::builder()
        .configure(
            meta::Config::new()
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(16 << 20),
        )
        .build_many(patterns)
        .map_err(|e| GuardError::Patterns(e.to_string()))
}

/// Adds `t` to a keyword's targets, widening the lane's window if present
/// (at a word start only when every pattern it serves allows no other).
fn widen(targets: &mut Vec<Target>, t: Target) {
    match targets.iter_mut().find(|x| x.lane == t.lane) {
        Some(x) => {
            x.lead = x.lead.max(t.lead);
            x.reach = x.reach.max(t.reach);
            x.word_start &= t.word_start;
        }
        None => targets.push(t),
    }
}

impl Matcher for AutomataMatcher {
    fn find(
        &self,
        haystack: &str,
        lanes: &dyn Fn(usize) -> bool,
        accept: &mut dyn FnMut(Candidate) -> bool,
    ) {
        let Plan {
            enabled,
            gated_on,
            front,
        } = self.plan(lanes);
        let mut windows: Vec<Vec<Range<usize>>> = vec![Vec::new(); self.lanes.len()];
        let mut caps = None;
        let front = front.and_then(|mask| self.front(mask));
        if let Some((regex, meaning)) = front {
            // One pass for all: every start at which some pattern matches,
            // in order. An ungated lane's candidates are judged as its own
            // search would judge them: a start inside an accepted match is
            // skipped. A match hides the lower-priority lanes and keywords
            // that start at the same place, so those are looked for there,
            // anchored.
            let mut resume = vec![0usize; self.lanes.len()];
            let mut at = 0;
            while at < haystack.len() {
                let Some(hit) = regex.search(&Input::new(haystack).range(at..)) else {
                    break;
                };
                at = next_boundary(haystack, hit.start());
                let (lane, local) = match meaning.get(hit.pattern().as_usize()) {
                    Some(Front::Keyword(k)) => {
                        if let Some((_, targets)) = &self.keywords {
                            open(
                                haystack,
                                hit.range(),
                                targets.get(*k),
                                &enabled,
                                &mut windows,
                            );
                        }
                        continue;
                    }
                    Some(&Front::Lane { lane, local }) => (lane, local),
                    None => continue,
                };
                let here = Input::new(haystack)
                    .range(hit.start()..)
                    .anchored(Anchored::Yes);
                if let (true, Some((keywords, targets))) = (gated_on, &self.keywords) {
                    if let Some(k) = keywords.search(&here) {
                        let targets = targets.get(k.pattern().as_usize());
                        open(haystack, k.range(), targets, &enabled, &mut windows);
                    }
                }
                for &(other, _) in self.ungated.iter().filter(|(l, _)| *l > lane) {
                    let (true, Some(engine)) = (enabled[other], self.lanes.get(other)) else {
                        continue;
                    };
                    if hit.start() < resume[other] {
                        continue;
                    }
                    if let Some(m) = engine.regex.search(&here) {
                        let local = m.pattern().as_usize();
                        resume[other] = engine.judge(
                            haystack,
                            local,
                            m.range(),
                            haystack.len(),
                            &mut caps,
                            accept,
                        );
                    }
                }
                if let Some(engine) = self.lanes.get(lane) {
                    if hit.start() >= resume[lane] {
                        resume[lane] = engine.judge(
                            haystack,
                            local,
                            hit.range(),
                            haystack.len(),
                            &mut caps,
                            accept,
                        );
                    }
                }
            }
        } else {
            if let (true, Some((regex, targets))) = (gated_on, &self.keywords) {
                let mut at = 0;
                while at < haystack.len() {
                    let Some(hit) = regex.search(&Input::new(haystack).range(at..)) else {
                        break;
                    };
                    at = hit.start() + 1;
                    let targets = targets.get(hit.pattern().as_usize());
                    open(haystack, hit.range(), targets, &enabled, &mut windows);
                }
            }
            for (i, engine) in self.lanes.iter().enumerate() {
                if enabled[i] && !engine.gated {
                    engine.search_window(haystack, 0..haystack.len(), &mut caps, accept);
                }
            }
        }
        for (i, engine) in self.lanes.iter().enumerate() {
            if !enabled[i] || !engine.gated {
                continue;
            }
            let w = &mut windows[i];
            // Overlapping hits arrive ordered by end; sort and merge.
            w.sort_by_key(|r| r.start);
            let mut merged: Vec<Range<usize>> = Vec::with_capacity(w.len());
            for r in w.drain(..) {
                match merged.last_mut() {
                    Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                    _ => merged.push(r),
                }
            }
            for r in merged {
                #[cfg(test)]
                self.windowed
                    .fetch_add(r.len(), std::sync::atomic::Ordering::Relaxed);
                engine.search_window(haystack, r, &mut caps, accept);
            }
        }
    }

    fn prepare(&self, lanes: &dyn Fn(usize) -> bool) -> Result<(), GuardError> {
        let Some((mask, cell)) = self
            .plan(lanes)
            .front
            .and_then(|mask| Some((mask, self.fronts.get(mask)?)))
        else {
            return Ok(());
        };
        if cell.get().is_none() {
            let _ = cell.set(self.build_front(mask)?);
        }
        Ok(())
    }
}

/// Opens the windows a keyword hit at `hit` calls for.
fn open(
    haystack: &str,
    hit: Range<usize>,
    targets: Option<&Vec<Target>>,
    enabled: &[bool],
    windows: &mut [Vec<Range<usize>>],
) {
    let word = |i: usize| haystack.as_bytes().get(i).is_some_and(|b| is_word_byte(*b));
    let inside_word = hit.start > 0 && word(hit.start - 1) && word(hit.start);
    for t in targets.into_iter().flatten() {
        if !enabled.get(t.lane).copied().unwrap_or(false) || (t.word_start && inside_word) {
            continue;
        }
        let start = floor_boundary(haystack, hit.start.saturating_sub(t.lead));
        let end = ceil_boundary(haystack, hit.end.saturating_add(t.reach));
        let Some(w) = windows.get_mut(t.lane) else {
            continue;
        };
        match w.last_mut() {
            Some(last) if start <= last.end && last.start <= end => {
                last.start = last.start.min(start);
                last.end = last.end.max(end);
            }
            _ => w.push(start..end),
        }
    }
}

impl LaneEngine {
    fn search_window(
        &self,
        haystack: &str,
        window: Range<usize>,
        caps: &mut Option<(usize, Captures)>,
        accept: &mut dyn FnMut(Candidate) -> bool,
    ) {
        let mut at = window.start;
        while at < window.end {
            let input = Input::new(haystack).range(at..window.end);
            let Some(m) = self.regex.search(&input) else {
                break;
            };
            at = self.judge(
                haystack,
                m.pattern().as_usize(),
                m.range(),
                window.end,
                caps,
                accept,
            );
        }
    }

    /// Offers the leftmost-first match `span` of local pattern `local`; when
    /// it is rejected, the later patterns of the lane anchored at the same
    /// start. Returns where the lane's search goes on: after the accepted
    /// match, or one character after the start.
    fn judge(
        &self,
        haystack: &str,
        local: usize,
        span: Range<usize>,
        end: usize,
        caps: &mut Option<(usize, Captures)>,
        accept: &mut dyn FnMut(Candidate) -> bool,
    ) -> usize {
        let mut accepted = None;
        if let Some(c) = self.candidate(haystack, local, span.clone(), caps) {
            if accept(c) {
                accepted = Some(span.end);
            }
        }
        if accepted.is_none() {
            for later in local + 1..self.len {
                let Ok(pid) = PatternID::new(later) else {
                    break;
                };
                let input = Input::new(haystack)
                    .range(span.start..end)
                    .anchored(Anchored::Pattern(pid));
                let Some(m2) = self.regex.search(&input) else {
                    continue;
                };
                if let Some(c) = self.candidate(haystack, later, m2.range(), caps) {
                    if accept(c) {
                        accepted = Some(m2.end());
                        break;
                    }
                }
            }
        }
        let next = next_boundary(haystack, span.start);
        match accepted {
            Some(end) => end.max(next),
            None => next,
        }
    }

    fn candidate(
        &self,
        haystack: &str,
        local: usize,
        span: Range<usize>,
        caps: &mut Option<(usize, Captures)>,
    ) -> Option<Candidate> {
        let group = match self.group.get(local) {
            Some(Some((single, index))) => {
                let input = Input::new(haystack)
                    .range(span.clone())
                    .anchored(Anchored::Yes);
                // Captures are made on first need, once per pattern and search.
                let key = self.first + local;
                let caps = match caps {
                    Some((k, c)) if *k == key => c,
                    _ => &mut caps.insert((key, single.create_captures())).1,
                };
                single.search_captures(&input, caps);
                caps.get_group(*index)
                    .map(|s| s.range())
                    .unwrap_or_else(|| span.clone())
            }
            _ => span.clone(),
        };
        if !haystack.is_char_boundary(group.start) || !haystack.is_char_boundary(group.end) {
            return None;
        }
        Some(Candidate {
            pattern: self.first + local,
            span,
            group,
        })
    }
}

/// A keyword as regex syntax: a literal in which a space stands for any
/// run of whitespace.
fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if c == ' ' {
            out.push_str(r"(?u:\s+)");
            continue;
        }
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A byte `(?-u:\b)` counts as a word character.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn next_boundary(s: &str, i: usize) -> usize {
    ceil_boundary(s, i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        regex: &'static str,
        keywords: &'static [&'static str],
        lane: usize,
    ) -> PatternSpec<'static> {
        PatternSpec {
            regex,
            keywords,
            reach: 64,
            lead: 64,
            word_start: false,
            lane,
        }
    }

    fn all(m: &AutomataMatcher, hay: &str, accept: impl Fn(&Candidate) -> bool) -> Vec<Candidate> {
        all_in(m, hay, &|_| true, accept)
    }

    /// The accepted candidates of the lanes `lanes` selects.
    fn all_in(
        m: &AutomataMatcher,
        hay: &str,
        lanes: &dyn Fn(usize) -> bool,
        accept: impl Fn(&Candidate) -> bool,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        m.find(hay, lanes, &mut |c| {
            let ok = accept(&c);
            if ok {
                out.push(c);
            }
            ok
        });
        out
    }

    #[test]
    fn gated_lanes_only_match_near_keywords_and_report_groups() {
        let m = AutomataMatcher::new(&[
            spec(r"tok_(?P<s>[a-z]{4})", &["tok_"], 0),
            spec(r"[0-9]{3}", &[], 1),
        ])
        .unwrap();
        let mut found = all(&m, "x tok_abcd y 123", |_| true);
        found.sort_by_key(|c| c.span.start);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].group, 6..10);
        assert_eq!(found[1].pattern, 1);
        assert!(all(&m, "x tok y tok_ 12", |_| true).is_empty());
    }

    #[test]
    fn a_keyword_where_an_ungated_match_starts_still_opens_its_window() {
        // The front automaton prefers the ungated pattern at offset 2; the
        // keyword `ab12` starting there must still gate lane 0.
        let m = AutomataMatcher::new(&[
            spec(r"ab12(?P<s>[a-z]{3})", &["ab12"], 0),
            spec(r"[a-z]{2}[0-9]{2}", &[], 1),
        ])
        .unwrap();
        let mut found = all(&m, "x ab12xyz", |_| true);
        found.sort_by_key(|c| c.pattern);
        assert_eq!(found.iter().map(|c| c.pattern).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(found[0].group, 6..9);
    }

    #[test]
    fn ungated_lanes_in_the_front_pass_keep_their_own_semantics() {
        // Each lane as if alone: an accepted match hides the starts inside
        // it; a rejected one lets the next pattern try, then the next
        // start. Lanes 1 and 2 start matches at the same places, and the
        // keyword of lane 0 starts where lane 2 does.
        let patterns = [
            spec(r"key[0-9]", &["key"], 0),
            spec(r"[0-9]{4}", &[], 1),
            spec(r"[0-9]{2}", &[], 1),
            spec(r"[0-9k][0-9a-z]+", &[], 2),
        ];
        let front = AutomataMatcher::new(&patterns).unwrap();
        let alone = AutomataMatcher::exhaustive(&patterns).unwrap();
        let hays = ["123456 key", "12 3456789 key1 1", "key1234", "1a 22b key9"];
        for hay in hays {
            for reject in [None, Some(1), Some(2), Some(3)] {
                for lanes in [
                    [true; 3],
                    [true, false, true],
                    [false, true, true],
                    [true, true, false],
                ] {
                    let run = |m: &AutomataMatcher| {
                        let mut out = all_in(m, hay, &|l| lanes[l], |c| Some(c.pattern) != reject);
                        out.sort_by_key(|c| (c.span.start, c.pattern));
                        out
                    };
                    assert_eq!(run(&front), run(&alone), "{hay} {reject:?} {lanes:?}");
                }
            }
        }
    }

    #[test]
    fn prepare_builds_what_find_would_build_on_first_use() {
        let m = AutomataMatcher::new(&[
            spec(r"key[0-9]", &["key"], 0),
            spec(r"[0-9]{2}", &[], 1),
            spec(r"[0-9]+[a-z]", &[], 2),
        ])
        .unwrap();
        let built = |m: &AutomataMatcher| m.fronts.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(built(&m), 1, "every lane on, at construction");
        m.prepare(&|l| l == 1).unwrap();
        assert_eq!(built(&m), 2);
        m.prepare(&|l| l == 1).unwrap();
        assert_eq!(built(&m), 2, "once");
        all_in(&m, "12 key1", &|l| l == 1, |_| true);
        assert_eq!(built(&m), 2, "find used the prepared automaton");
        all_in(&m, "12 key1", &|l| l != 1, |_| true);
        assert_eq!(built(&m), 3, "an unprepared lane set is built on first use");
    }

    #[test]
    fn windows_reach_lead_bytes_before_a_keyword_and_reach_after() {
        let mut near = spec(r"[a-z]+ (?:tok)", &["tok"], 0);
        near.lead = 3;
        let m = AutomataMatcher::new(&[near]).unwrap();
        let found = all(&m, "...... abc tok", |_| true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].span, 8..14);
        let mut after = spec(r"tok [a-z]+", &["tok"], 0);
        after.reach = 3;
        let m = AutomataMatcher::new(&[after]).unwrap();
        let found = all(&m, "tok abcdef", |_| true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].span, 0..6);
    }

    #[test]
    fn word_start_keywords_open_windows_only_at_word_starts_and_forward() {
        let mut p = spec(r"(?-u:\b)tok_[a-z]+", &["tok_"], 0);
        p.word_start = true;
        let m = AutomataMatcher::new(&[p]).unwrap();
        let windowed = || m.windowed.swap(0, std::sync::atomic::Ordering::Relaxed);
        // Inside a run: no window at all.
        assert!(all(&m, "abctok_xyz", |_| true).is_empty());
        assert_eq!(windowed(), 0);
        // At a word start: a window from the keyword on, none before it.
        let hay = format!("{} tok_xyz", "a".repeat(100));
        let found = all(&m, &hay, |_| true);
        assert_eq!(found.len(), 1);
        assert_eq!(windowed(), hay.len() - 101);
        // A keyword that starts with a non-word byte is never inside a word.
        let mut p = spec(r"\$2a\$[0-9]+", &["$2a$"], 0);
        p.word_start = true;
        let m = AutomataMatcher::new(&[p]).unwrap();
        assert_eq!(all(&m, "ab$2a$10", |_| true).len(), 1);
    }

    #[test]
    fn rejected_candidates_let_later_patterns_try() {
        let m =
            AutomataMatcher::new(&[spec(r"[0-9]{4}", &[], 0), spec(r"[0-9]{2}", &[], 0)]).unwrap();
        let found = all(&m, "1234", |c| c.pattern == 1);
        assert_eq!(
            found.iter().map(|c| c.span.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..4]
        );
    }

    #[test]
    fn windows_never_split_characters() {
        let m = AutomataMatcher::new(&[spec(r"x[^ ]*", &["x"], 0)]).unwrap();
        let found = all(&m, "ééé xü ü", |_| true);
        assert_eq!(found.len(), 1);
    }
}
