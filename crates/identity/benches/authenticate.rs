//! Authentication cost per request: a verified-token cache hit and a miss
//! (full signature and claims check) for each algorithm, a DPoP-bound token
//! (cache hit plus proof check), and an API key. Target: a cache hit ≤ 2 µs.
//!
//! `cargo bench -p warden-identity --bench authenticate`

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use warden_identity::{
    create_api_key, Authenticator, EgressPolicy, KeyStore, RawApiKeys, RawDpop, RawIdentity,
    RawIssuer, RequestFacts,
};

const ISSUER: &str = "https://idp.bench.example";
const MCP: &str = "https://warden.bench.example/mcp";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Poll a future that never waits (static keys, in-memory caches) to
/// completion without a runtime in the measured loop.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair, bool),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct BenchKey {
    alg: &'static str,
    signer: Signer,
    jwk: Value,
}

impl BenchKey {
    fn new(alg: &'static str) -> BenchKey {
        let (signer, mut jwk) = match alg {
            "RS256" | "PS256" => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("RSA key");
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                (Signer::Rsa(pair, alg == "PS256"), jwk)
            }
            "ES256" => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (Signer::Ec(pair), jwk)
            }
            _ => {
                let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
                (Signer::Ed(pair), jwk)
            }
        };
        jwk["kid"] = json!(format!("bench-{alg}"));
        jwk["alg"] = json!(alg);
        BenchKey { alg, signer, jwk }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Rsa(pair, pss) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                let padding = if *pss {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                pair.sign(padding, &rng, input.as_bytes(), &mut sig)
                    .expect("RSA sign");
                sig
            }
            Signer::Ec(pair) => pair
                .sign(&rng, input.as_bytes())
                .expect("EC sign")
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    fn token(&self, extra: Value) -> String {
        let mut claims = json!({
            "iss": ISSUER, "sub": "bench-user", "aud": MCP, "iat": now(), "exp": now() + 3600,
            "jti": "bench", "client_id": "bench-client", "scope": "mcp mcp.read",
            "roles": ["analyst"], "groups": ["eng"],
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        let header =
            json!({"alg": self.alg, "typ": "at+jwt", "kid": format!("bench-{}", self.alg)});
        self.sign(&header, &claims)
    }
}

fn raw(dir: &Path, cache_entries: &str) -> RawIdentity {
    RawIdentity {
        public_url: Some("https://warden.bench.example".to_owned()),
        data_dir: Some(dir.display().to_string()),
        token_cache_entries: Some(cache_entries.to_owned()),
        issuers: Some(vec![RawIssuer {
            issuer: Some(ISSUER.to_owned()),
            jwks_file: Some(dir.join("jwks.json").display().to_string()),
            ..RawIssuer::default()
        }]),
        dpop: Some(RawDpop {
            replay_cache_entries: Some("50000000".to_owned()),
            ..RawDpop::default()
        }),
        api_keys: Some(RawApiKeys::default()),
        ..RawIdentity::default()
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<BenchKey> = ["RS256", "PS256", "ES256", "EdDSA"]
        .into_iter()
        .map(BenchKey::new)
        .collect();
    let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("write JWKS");

    let start = |entries: &str| -> Arc<Authenticator> {
        let settings = raw(dir.path(), entries)
            .resolve(Path::new("/"))
            .expect("settings");
        runtime
            .block_on(Authenticator::start(settings, EgressPolicy::strict()))
            .expect("start")
    };
    let cached = start("10000");
    let uncached = start("0");

    let mut group = c.benchmark_group("authenticate");
    for key in &keys {
        let header = format!("Bearer {}", key.token(json!({})));
        let facts = RequestFacts {
            method: "POST",
            url: MCP,
            authorization: Some(&header),
            ..RequestFacts::default()
        };
        ready(cached.authenticate(&facts)).expect("accepted");
        group.bench_function(format!("hit/{}", key.alg), |b| {
            b.iter(|| ready(cached.authenticate(&facts)).expect("accepted"));
        });
        group.bench_function(format!("miss/{}", key.alg), |b| {
            b.iter(|| ready(uncached.authenticate(&facts)).expect("accepted"));
        });
    }

    // DPoP: a bound token (cache hit) with a fresh ES256 proof per request.
    let client = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("client key");
    let point = client.public_key().as_ref().to_vec();
    let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
    let thumb_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let jkt =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumb_input.as_bytes()).as_ref());
    let es = &keys[2];
    let bound = es.token(json!({"cnf": {"jkt": jkt}}));
    let ath = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bound.as_bytes()).as_ref());
    let header = format!("DPoP {bound}");
    let rng = SystemRandom::new();
    let mut counter = 0u64;
    let mut proof = || {
        counter += 1;
        let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y}});
        let claims = json!({"jti": format!("p{counter}"), "htm": "POST", "htu": MCP, "iat": now(), "ath": ath});
        let input = format!(
            "{}.{}",
            b64(h.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = client.sign(&rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", b64(sig.as_ref()))
    };
    group.bench_function("dpop_hit/ES256", |b| {
        b.iter_batched(
            &mut proof,
            |p| {
                let facts = RequestFacts {
                    method: "POST",
                    url: MCP,
                    authorization: Some(&header),
                    dpop: Some(&p),
                    ..RequestFacts::default()
                };
                ready(cached.authenticate(&facts)).expect("accepted")
            },
            BatchSize::SmallInput,
        );
    });

    // API key: one HMAC-SHA256 and a constant-time compare.
    let settings = raw(dir.path(), "0")
        .resolve(Path::new("/"))
        .expect("settings");
    let secret = settings.api_key_secret().expect("secret");
    let (api_key, stored) = create_api_key(&secret, "svc", &[]).expect("key");
    let store_path = settings.api_key_store_path().expect("path");
    let mut store = KeyStore::load(&store_path).expect("store");
    store.add(stored).expect("add");
    store.save(&store_path).expect("save");
    cached.reload_api_keys().expect("reload");
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        api_key: Some(&api_key),
        ..RequestFacts::default()
    };
    group.bench_function("api_key", |b| {
        b.iter(|| ready(cached.authenticate(&facts)).expect("accepted"));
    });
    group.finish();
    drop(runtime);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
