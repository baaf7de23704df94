use super::*;
use crate::event::{Event, EventKind};
use crate::record::{Record, GENESIS};

fn batch(seqs: Range<u64>) -> Batch {
    seqs.map(|s| Entry::bare(Record::chain(s, GENESIS, &Event::new(EventKind::Call))))
        .collect::<Vec<_>>()
        .into()
}

fn seqs(taken: &Option<(Batch, Range<usize>)>) -> Vec<u64> {
    taken.as_ref().map_or_else(Vec::new, |(b, r)| {
        b[r.clone()].iter().map(|e| e.record.seq).collect()
    })
}

#[test]
fn takes_what_follows_the_position_within_the_head() {
    let h = Handoff::new(100);
    h.offer(&batch(1..5));
    h.offer(&batch(5..8));
    assert_eq!(seqs(&h.take(0, 10, 100)), vec![1, 2, 3, 4]);
    // Not past the head a follower may take, and at most `max`.
    assert_eq!(seqs(&h.take(4, 5, 100)), vec![5]);
    assert_eq!(seqs(&h.take(5, 10, 1)), vec![6]);
    assert_eq!(seqs(&h.take(6, 10, 100)), vec![7]);
    assert!(h.take(7, 10, 100).is_none());
}

#[test]
fn a_gap_or_a_lag_sends_the_follower_to_the_journal() {
    let h = Handoff::new(5);
    h.offer(&batch(1..4));
    // Beyond capacity: dropped, the follower reads the journal.
    h.offer(&batch(4..7));
    assert_eq!(seqs(&h.take(0, 10, 100)), vec![1, 2, 3]);
    h.offer(&batch(7..9));
    // 4..=6 are in the journal only.
    assert!(h.take(3, 10, 100).is_none());
    assert_eq!(seqs(&h.take(6, 10, 100)), vec![7, 8]);
    // A follower behind what memory holds (it failed and restarted
    // from an older position) reads the journal too.
    h.offer(&batch(9..11));
    assert!(h.take(2, 10, 100).is_none());
    // A follower past it drops it.
    assert!(h.take(10, 12, 100).is_none());
    h.offer(&batch(11..12));
    assert_eq!(seqs(&h.take(10, 12, 100)), vec![11]);
}

#[test]
fn non_consecutive_batches_are_not_taken() {
    let h = Handoff::new(100);
    let mut v: Vec<Entry> = batch(1..3).to_vec();
    v.extend(batch(4..5).iter().cloned());
    h.offer(&v.into());
    assert!(h.take(0, 10, 100).is_none());
}

#[test]
fn handed_over_entries_index_what_the_journal_would_give() {
    use crate::event::{Decision, PrincipalFacts, Timestamp};
    let full = Event {
        principal: Some(PrincipalFacts {
            subject: "alice".into(),
            tenant: Some("acme".into()),
            ..PrincipalFacts::default()
        }),
        server: Some("notes".into()),
        tool: Some("read_note".into()),
        decision: Some(Decision::Deny),
        correlation_id: Some("corr-1".into()),
        session: Some("sess-\u{2028}1".into()),
        ..Event::at(
            EventKind::Call,
            Timestamp::from_unix_nanos(1_780_000_000_123_456_789),
        )
    };
    let events = [
        full,
        Event::new(EventKind::Checkpoint),
        Event::new(EventKind::SessionHijackRefused),
        Event {
            decision: Some(Decision::Hold),
            ..Event::new(EventKind::Approval)
        },
    ];
    for (i, event) in events.iter().enumerate() {
        let record = Record::chain(i as u64 + 1, GENESIS, event);
        let handed = Entry::chained(record.clone(), event);
        let read_back = Entry::from_record(record);
        assert_eq!(handed.index, read_back.index, "event {i}");
        assert!(
            !read_back.index.kind.is_empty(),
            "event {i} was parsed back"
        );
    }
}
