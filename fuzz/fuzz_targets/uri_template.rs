//! URI template matching: `UriTemplate::parse` + `matches` on any template
//! and URI; on short inputs, the same answer as `template_matches` and as
//! the backtracking matcher it replaced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_fuzz::{backtracking_template_matches, fields};
use warden_gateway::federation::{template_matches, UriTemplate, MAX_TEMPLATE_BYTES};

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (template, uri) = (&f[0], &f[1]);
    let compiled = UriTemplate::parse(template);
    assert_eq!(compiled.is_some(), template.len() <= MAX_TEMPLATE_BYTES);
    let matched = compiled.as_ref().is_some_and(|t| t.matches(uri));
    // Short inputs only: each compiles the template again, and the
    // reference backtracks (at most 2^16 ways to split a 16-byte URI).
    if template.len() <= 32 && uri.len() <= 16 {
        assert_eq!(matched, template_matches(template, uri));
        assert_eq!(
            matched,
            backtracking_template_matches(template, uri),
            "template {template:?} uri {uri:?}"
        );
    }
});
