//! What Warden's fuzz targets share: splitting one input into fields, the
//! reference URI-template matcher, and an authenticator with a development
//! issuer whose key the targets can sign with.
#![forbid(unsafe_code)]

/// Splits a fuzz input into at most `n` text fields at `0xFF` bytes (a byte
/// UTF-8 never contains, so a field may hold any text); missing fields are
/// empty and invalid UTF-8 is replaced.
pub fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |b| *b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// The backtracking matcher `template_matches` was before it was compiled
/// to an automaton: exponential in the number of expressions, so only for
/// short inputs; the reference for `UriTemplate`.
pub fn backtracking_template_matches(template: &str, uri: &str) -> bool {
    fn go(t: &[u8], u: &[u8]) -> bool {
        match t.first() {
            None => u.is_empty(),
            Some(b'{') => {
                let Some(close) = t.iter().position(|b| *b == b'}') else {
                    return t == u;
                };
                let expr = &t[1..close];
                let any = matches!(
                    expr.first(),
                    Some(b'+' | b'#' | b'/' | b'.' | b';' | b'?' | b'&')
                );
                let rest = &t[close + 1..];
                (1..=u.len()).any(|n| {
                    let (var, tail) = u.split_at(n);
                    (any || !var.contains(&b'/')) && go(rest, tail)
                })
            }
            Some(c) => u.first() == Some(c) && go(&t[1..], &u[1..]),
        }
    }
    uri.len() <= 8192 && template.len() <= 1024 && go(template.as_bytes(), uri.as_bytes())
}

/// An authenticator as `warden serve` builds it from `identity:` with a
/// development issuer, API keys and DPoP, and the keys to sign tokens and
/// proofs it accepts.
pub mod identity {
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use aws_lc_rs::digest::{digest, SHA256};
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use warden_identity::{
        AuthError, Authenticator, DevAlgorithm, DevIssuer, EgressPolicy, MintRequest, Principal,
        RawApiKeys, RawDevIssuer, RawDpop, RawIdentity, RequestFacts,
    };

    pub const PUBLIC_URL: &str = "https://warden.example.com";
    pub const MCP_URL: &str = "https://warden.example.com/mcp";

    pub struct Harness {
        runtime: tokio::runtime::Runtime,
        /// DPoP without server nonces.
        plain: Arc<Authenticator>,
        /// DPoP with server nonces required.
        nonces: Arc<Authenticator>,
        /// The development issuer's own key (read from its key file).
        issuer_key: Ed25519KeyPair,
        /// The DPoP key of the client, its public JWK and thumbprint.
        pub proof_key: Ed25519KeyPair,
        pub proof_jwk: String,
        pub proof_jkt: String,
        /// An access token bound to `proof_jkt`, valid for years.
        pub bound_token: String,
        _dir: tempfile::TempDir,
    }

    /// The process's harness, built on first use.
    pub fn harness() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::new)
    }

    pub fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// `text` with each placeholder replaced.
    pub fn substitute(text: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    }

    /// A compact JWS of `header` and `claims` (any bytes) signed with `key`.
    pub fn sign(key: &Ed25519KeyPair, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature = key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }

    impl Harness {
        fn new() -> Harness {
            let dir = tempfile::tempdir().expect("temporary directory");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            // The issuer loads the key it finds in its data directory: make
            // it first, and read it to sign with.
            let dev = DevIssuer::load_or_create(dir.path(), PUBLIC_URL, DevAlgorithm::EdDsa)
                .expect("development key");
            let pkcs8 = std::fs::read(dev.key_path()).expect("key file");
            let issuer_key = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("Ed25519 PKCS#8");
            let start = |nonce: bool| {
                let raw = RawIdentity {
                    public_url: Some(PUBLIC_URL.to_owned()),
                    data_dir: Some(dir.path().display().to_string()),
                    audiences: Some(vec![MCP_URL.to_owned()]),
                    dev_issuer: Some(RawDevIssuer::default()),
                    api_keys: Some(RawApiKeys::default()),
                    dpop: Some(RawDpop {
                        nonce: Some(nonce),
                        ..RawDpop::default()
                    }),
                    ..RawIdentity::default()
                };
                let settings = raw
                    .resolve(std::path::Path::new("/"))
                    .expect("valid identity settings");
                runtime
                    .block_on(Authenticator::start(settings, EgressPolicy::strict()))
                    .expect("authenticator starts without network")
            };
            let plain = start(false);
            let nonces = start(true);

            let proof_key = Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).expect("seed");
            let x = b64(proof_key.public_key().as_ref());
            // RFC 7638: the required members, sorted, no whitespace.
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
            let proof_jkt = b64(digest(&SHA256, canonical.as_bytes()).as_ref());
            let proof_jwk = canonical;
            let bound_token = plain
                .dev_issuer()
                .expect("development issuer")
                .mint_with(&MintRequest {
                    subject: "fuzz",
                    ttl: Duration::from_secs(10 * 365 * 24 * 3600),
                    audience: MCP_URL,
                    dpop_jkt: Some(&proof_jkt),
                    ..MintRequest::default()
                })
                .expect("minted");
            Harness {
                runtime,
                plain,
                nonces,
                issuer_key,
                proof_key,
                proof_jwk,
                proof_jkt,
                bound_token,
                _dir: dir,
            }
        }

        /// An access token with this header and these claims, signed by the
        /// development issuer.
        pub fn issuer_token(&self, header: &str, claims: &str) -> String {
            sign(&self.issuer_key, header, claims)
        }

        /// Authenticates a request (and renders the challenge of a refusal,
        /// as the HTTP layer would).
        pub fn authenticate(
            &self,
            with_nonces: bool,
            facts: &RequestFacts<'_>,
        ) -> Result<Principal, AuthError> {
            let auth = if with_nonces {
                &self.nonces
            } else {
                &self.plain
            };
            let result = self.runtime.block_on(auth.authenticate(facts));
            if let Err(e) = &result {
                let _ = auth.challenge(e, "/mcp");
                let _ = e.to_string();
            }
            result
        }

        /// `Authenticator::authenticate_token` (stdio mode).
        pub fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
            self.runtime
                .block_on(self.plain.authenticate_token(token, MCP_URL))
        }
    }
}
