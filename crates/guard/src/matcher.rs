//! The seam between detectors and the engine that finds their patterns.
//!
//! A [`Matcher`] runs many patterns over a text in one pass per lane and
//! reports leftmost-first candidates; the caller's check accepts or rejects
//! each one, and a rejected candidate lets lower-priority patterns of the
//! same lane try the same position. [`AutomataMatcher`] is the backend:
//! `regex-automata`'s meta regex over all patterns of a lane at once
//! (`Regex::new_many`), gated by one keyword regex over every lane's
//! keywords that limits gated lanes to windows around keyword hits. The
//! keyword gate runs on regex-automata's lazy DFA rather than aho-corasick:
//! with ~200 case-insensitive keywords aho-corasick falls back to its
//! generic DFA loop, which measured ~40% more instructions per byte than
//! the lazy DFA's unrolled one (callgrind, `examples/profile`). Another
//! backend (vectorscan) would implement the same trait.

use std::ops::Range;

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
    /// case-insensitively); empty when the pattern has no such literal.
    pub keywords: &'a [&'a str],
    /// The longest a match can be, in bytes.
    pub reach: usize,
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
}

struct LaneEngine {
    lane: usize,
    regex: Regex,
    /// Global pattern index of this lane's pattern 0.
    first: usize,
    len: usize,
    /// Index of the group `s` per local pattern.
    group: Vec<Option<usize>>,
    /// True when every pattern has keywords: the lane runs only in windows
    /// around keyword hits.
    gated: bool,
}

/// Per keyword: the lanes (positions) it opens a window in, and how far.
type KeywordTargets = Vec<Vec<(usize, usize)>>;

/// regex-automata + aho-corasick backend.
pub struct AutomataMatcher {
    lanes: Vec<LaneEngine>,
    /// One keyword automaton for all gated lanes; per keyword, the lanes
    /// (positions in `lanes`) it opens and how far.
    keywords: Option<(Regex, KeywordTargets)>,
}

impl AutomataMatcher {
    pub fn new(patterns: &[PatternSpec<'_>]) -> Result<AutomataMatcher, GuardError> {
        let mut lane_ids: Vec<usize> = patterns.iter().map(|p| p.lane).collect();
        lane_ids.sort_unstable();
        lane_ids.dedup();
        let mut lanes = Vec::new();
        let mut words: Vec<&str> = Vec::new();
        let mut opens: Vec<Vec<(usize, usize)>> = Vec::new();
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
            let regex = Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(regex_automata::MatchKind::LeftmostFirst)
                        .nfa_size_limit(Some(64 << 20))
                        .hybrid_cache_capacity(4 << 20),
                )
                .build_many(&regexes)
                .map_err(|e| GuardError::Patterns(e.to_string()))?;
            let group = (0..members.len())
                .map(|i| {
                    PatternID::new(i)
                        .ok()
                        .and_then(|pid| regex.group_info().to_index(pid, "s"))
                })
                .collect();
            let gated = members.iter().all(|(_, p)| !p.keywords.is_empty());
            let position = lanes.len();
            if gated {
                for (_, p) in &members {
                    for k in p.keywords {
                        let i = match words.iter().position(|w| w == k) {
                            Some(i) => i,
                            None => {
                                words.push(k);
                                opens.push(Vec::new());
                                words.len() - 1
                            }
                        };
                        match opens[i].iter_mut().find(|(l, _)| *l == position) {
                            Some((_, r)) => *r = (*r).max(p.reach),
                            None => opens[i].push((position, p.reach)),
                        }
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
                        for &(lane, reach) in &opens[j] {
                            match merged[i].iter_mut().find(|(l, _)| *l == lane) {
                                Some((_, r)) => *r = (*r).max(reach + outer.len()),
                                None => merged[i].push((lane, reach + outer.len())),
                            }
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
            let regex = Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(regex_automata::MatchKind::LeftmostFirst)
                        .hybrid_cache_capacity(4 << 20),
                )
                .build_many(&regexes)
                .map_err(|e| GuardError::Patterns(e.to_string()))?;
            let targets = order.iter().map(|&i| merged[i].clone()).collect();
            Some((regex, targets))
        };
        Ok(AutomataMatcher { lanes, keywords })
    }
}

impl Matcher for AutomataMatcher {
    fn find(
        &self,
        haystack: &str,
        lanes: &dyn Fn(usize) -> bool,
        accept: &mut dyn FnMut(Candidate) -> bool,
    ) {
        let enabled: Vec<bool> = self.lanes.iter().map(|l| lanes(l.lane)).collect();
        let mut windows: Vec<Vec<Range<usize>>> = vec![Vec::new(); self.lanes.len()];
        if let Some((ac, opens)) = &self.keywords {
            if self.lanes.iter().zip(&enabled).any(|(l, e)| l.gated && *e) {
                let mut at = 0;
                while at < haystack.len() {
                    let Some(hit) = ac.search(&Input::new(haystack).range(at..)) else {
                        break;
                    };
                    at = hit.start() + 1;
                    let Some(targets) = opens.get(hit.pattern().as_usize()) else {
                        continue;
                    };
                    for &(lane, reach) in targets {
                        if !enabled[lane] {
                            continue;
                        }
                        let start = floor_boundary(haystack, hit.start().saturating_sub(reach));
                        let end = ceil_boundary(haystack, hit.end().saturating_add(reach));
                        let w = &mut windows[lane];
                        match w.last_mut() {
                            Some(last) if start <= last.end && last.start <= end => {
                                last.start = last.start.min(start);
                                last.end = last.end.max(end);
                            }
                            _ => w.push(start..end),
                        }
                    }
                }
            }
        }
        let mut caps = None;
        for (i, engine) in self.lanes.iter().enumerate() {
            if !enabled[i] {
                continue;
            }
            if !engine.gated {
                engine.search_window(haystack, 0..haystack.len(), &mut caps, accept);
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
                engine.search_window(haystack, r, &mut caps, accept);
            }
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
            let local = m.pattern().as_usize();
            let mut accepted = None;
            if let Some(c) = self.candidate(haystack, local, m.range(), caps) {
                if accept(c) {
                    accepted = Some(m.end());
                }
            }
            if accepted.is_none() {
                for later in local + 1..self.len {
                    let Ok(pid) = PatternID::new(later) else {
                        break;
                    };
                    let input = Input::new(haystack)
                        .range(m.start()..window.end)
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
            let next = next_boundary(haystack, m.start());
            at = match accepted {
                Some(end) => end.max(next),
                None => next,
            };
        }
    }

    fn candidate(
        &self,
        haystack: &str,
        local: usize,
        span: Range<usize>,
        caps: &mut Option<(usize, Captures)>,
    ) -> Option<Candidate> {
        let group = match self.group.get(local).copied().flatten() {
            None => span.clone(),
            Some(index) => {
                let pid = PatternID::new(local).ok()?;
                let input = Input::new(haystack)
                    .range(span.clone())
                    .anchored(Anchored::Pattern(pid));
                // Captures are made on first need, once per lane and search.
                let caps = match caps {
                    Some((lane, c)) if *lane == self.lane => c,
                    _ => &mut caps.insert((self.lane, self.regex.create_captures())).1,
                };
                self.regex.search_captures(&input, caps);
                caps.get_group(index)
                    .map(|s| s.range())
                    .unwrap_or_else(|| span.clone())
            }
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

/// A literal as regex syntax.
fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
            lane,
        }
    }

    fn all(m: &AutomataMatcher, hay: &str, accept: impl Fn(&Candidate) -> bool) -> Vec<Candidate> {
        let mut out = Vec::new();
        m.find(hay, &|_| true, &mut |c| {
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
        let found = all(&m, "x tok_abcd y 123", |_| true);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].group, 6..10);
        assert_eq!(found[1].pattern, 1);
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
