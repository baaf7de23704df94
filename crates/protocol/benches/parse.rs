use criterion::{criterion_group, criterion_main, Criterion};
use warden_protocol::{message, strict::Limits, EditSet};

fn bench(c: &mut Criterion) {
    let call = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"notes__search","arguments":{"query":"quarterly report","limit":10,"tags":["finance","q3"]},"_meta":{"progressToken":"p-1"}}}"#;
    let limits = Limits::default();
    c.bench_function("parse tools/call", |b| {
        b.iter(|| message::parse(std::hint::black_box(call), &limits, false).unwrap())
    });
    c.bench_function("parse + rewrite id and name", |b| {
        b.iter(|| {
            let m = match message::parse(call, &limits, false).unwrap() {
                message::Incoming::Single(m) => m,
                _ => unreachable!(),
            };
            let mut e = EditSet::new();
            e.replace(call, m.id.unwrap().raw_value(), "1001".into());
            e.replace_with_str(call, m.param("name").unwrap(), "search");
            e.apply(call).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
