//! The incremental SSE decoder, fed the same stream in one piece and in
//! chunks whose sizes the input chooses: where both succeed they must yield
//! the same events. Then the encoder's output must decode to what it
//! encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::sse::{encode, Decoder, Event};

fuzz_target!(|data: &[u8]| {
    let [limit, n, rest @ ..] = data else {
        return;
    };
    let (sizes, stream) = rest.split_at(usize::from(*n % 16).min(rest.len()));
    let max_event_bytes = if limit & 1 == 0 {
        1 << 20
    } else {
        usize::from(*limit)
    };

    let mut whole = Decoder::new(max_event_bytes);
    let at_once = whole.feed(stream);

    let mut chunked = Decoder::new(max_event_bytes);
    let mut events: Vec<Event> = Vec::new();
    let mut failed = false;
    let mut left = stream;
    for size in sizes.iter().cycle() {
        if left.is_empty() {
            break;
        }
        let (chunk, tail) = left.split_at((usize::from(*size) % 64 + 1).min(left.len()));
        left = tail;
        match chunked.feed(chunk) {
            Ok(evs) => events.extend(evs),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if sizes.is_empty() && !left.is_empty() {
        match chunked.feed(left) {
            Ok(evs) => events.extend(evs),
            Err(_) => failed = true,
        }
    }
    if let (Ok(at_once), false) = (at_once, failed) {
        assert_eq!(at_once, events, "chunking changed the events");
        assert_eq!(whole.last_event_id, chunked.last_event_id);
    }

    // The encoder's output decodes to what it encoded (SSE has no way to
    // carry a lone CR in data, nor NUL in an id).
    let text = String::from_utf8_lossy(stream);
    let (id, data) = text.split_at(text.len().min(text.find('|').unwrap_or(0)));
    let data = data.replace('\r', "");
    let id = (!id.contains('\0')).then_some(id);
    let encoded = encode(id, Some("message"), &data);
    let mut decoder = Decoder::new(1 << 20);
    let decoded = decoder
        .feed(encoded.as_bytes())
        .expect("the encoder's output decodes");
    assert_eq!(decoded.len(), 1, "one event");
    assert_eq!(decoded[0].data, data);
    assert_eq!(decoded[0].event.as_deref(), Some("message"));
    let expected_id = id.map(|i| i.replace(['\r', '\n'], ""));
    assert_eq!(decoded[0].id, expected_id);
});
