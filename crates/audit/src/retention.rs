//! Retention records: before a sink loses its oldest records, the writer
//! chains an event saying which, and why. `verify` reads them to tell
//! pruned history (reported, not a failure) from records removed by
//! anyone else (a failure), and an auditor reads them to learn when and
//! under which policy history went.

use crate::event::{Event, EventKind, RetentionFacts};
use crate::sink::RetentionCut;

/// The `retention` event announcing `cut` of `sink`.
pub(crate) fn marker(sink: &str, cut: &RetentionCut) -> Event {
    Event {
        retention: Some(Box::new(RetentionFacts {
            sink: sink.to_owned(),
            pruned_through: cut.keep_from.saturating_sub(1),
            records: cut.records(),
            reason: cut.reason.to_owned(),
        })),
        ..Event::new(EventKind::Retention)
    }
}
