//! An operator's external classifier service (issue #20, item 4): a model
//! of the operator's choice, served over HTTP, asked whether a tool's
//! descriptions are poisoned when the registry first sees the tool (at pin
//! time, off the request path of calls).
//!
//! The request is Hugging Face's text-classification shape, so the common
//! servers answer it as they are (Text Embeddings Inference's `/predict`,
//! the Inference API, a `transformers` pipeline behind any small HTTP
//! wrapper):
//!
//! ```text
//! POST <url>   {"inputs": "<the tool's descriptions>"}
//! 200          [{"label": "INJECTION", "score": 0.98}, {"label": "SAFE", "score": 0.02}]
//!              or [[{"label": …, "score": …}, …]]   or {"score": 0.98}
//! ```
//!
//! The score is the highest among the configured `labels` (or the bare
//! `score`), in `[0, 1]`. Every other answer, a status other than 200, a
//! body over 1 MiB and no answer within `timeout` are errors: what they
//! mean (warn or block) is the caller's fail mode. The connection goes
//! through the egress guard (the operator named the service, so loopback
//! and private addresses are allowed, link-local and metadata addresses
//! never), redirects are not followed, and nothing of the answer is
//! logged.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// What to do with a tool when the service cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Pin it as the rules decide, with a warning finding.
    Warn,
    /// Hide it (fail closed) until the service answers.
    Block,
}

/// `registry.scanner.classifier`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierSettings {
    pub url: url::Url,
    pub timeout: Duration,
    /// Scores at or above this are poisoned.
    pub threshold: f32,
    /// The labels whose score counts (case-insensitive).
    pub labels: Vec<String>,
    pub on_error: OnError,
}

// The threshold is validated finite at load, so equality is total.
impl Eq for ClassifierSettings {}

/// Why the service gave no score.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClassifierError {
    #[error("the classifier did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the classifier could not be reached: {0}")]
    Unreachable(String),
    #[error("the classifier answered HTTP {0}")]
    Status(u16),
    #[error("the classifier's answer has no score for the configured labels")]
    NoScore,
    #[error("the classifier's answer is not JSON of a known shape")]
    Malformed,
    #[error("no HTTP client: {0}")]
    Client(String),
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Classifier {
    http: reqwest::Client,
    settings: Arc<ClassifierSettings>,
    /// Scores by text: an item the classifier flagged is never pinned, so
    /// its list comes back; the same text is not asked about twice.
    /// Failures are not kept.
    scores: Arc<std::sync::Mutex<std::collections::HashMap<String, f32>>>,
}

/// At most this many scores are kept (then the cache starts over).
const MAX_CACHED: usize = 1024;

/// Answers larger than this are refused.
const MAX_ANSWER: usize = 1 << 20;

impl Classifier {
    pub fn new(settings: ClassifierSettings) -> Result<Classifier, ClassifierError> {
        let http = reqwest::Client::builder()
            // The egress guard: the service's name resolves to checked
            // addresses only (never link-local or metadata).
            .dns_resolver(Arc::new(warden_egress::GuardedResolver::new(
                warden_egress::EgressPolicy::UPSTREAM,
            )))
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClassifierError::Client(e.to_string()))?;
        Ok(Classifier {
            http,
            settings: Arc::new(settings),
            scores: Arc::default(),
        })
    }

    pub fn settings(&self) -> &ClassifierSettings {
        &self.settings
    }

    /// The score of `text`, in `[0, 1]`.
    pub async fn score(&self, text: &str) -> Result<f32, ClassifierError> {
        if let Some(score) = self.cached().get(text) {
            return Ok(*score);
        }
        let score = self.ask(text).await?;
        let mut cache = self.cached();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(text.to_owned(), score);
        Ok(score)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, f32>> {
        self.scores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn ask(&self, text: &str) -> Result<f32, ClassifierError> {
        let s = &self.settings;
        // An IP literal never reaches the resolver: check it here.
        if let Some(ip) = s
            .url
            .host()
            .and_then(|h| warden_egress::host_ip(&h.to_owned()))
        {
            warden_egress::EgressPolicy::UPSTREAM
                .check(ip)
                .map_err(|e| ClassifierError::Unreachable(e.to_string()))?;
        }
        let body = serde_json::json!({ "inputs": text }).to_string();
        let resp = self
            .http
            .post(s.url.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ClassifierError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(ClassifierError::Malformed);
        }
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if bytes.len() > MAX_ANSWER {
            return Err(ClassifierError::Malformed);
        }
        score_of(&bytes, &s.labels)
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClassifierError {
        if e.is_timeout() {
            ClassifierError::Timeout(self.settings.timeout)
        } else {
            // The kind only: reqwest's text can carry the URL's userinfo.
            ClassifierError::Unreachable(if e.is_connect() {
                "connection failed".to_owned()
            } else {
                "request failed".to_owned()
            })
        }
    }
}

#[derive(Deserialize)]
struct Labelled {
    label: String,
    score: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Flat(Vec<Labelled>),
    Nested(Vec<Vec<Labelled>>),
    Bare { score: f64 },
}

/// The score an answer gives the configured labels.
pub fn score_of(body: &[u8], labels: &[String]) -> Result<f32, ClassifierError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| ClassifierError::Malformed)?;
    let best = |items: &mut dyn Iterator<Item = &Labelled>| {
        items
            .filter(|l| labels.iter().any(|w| w.eq_ignore_ascii_case(&l.label)))
            .map(|l| l.score)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
    };
    let score = match &answer {
        Answer::Flat(v) => best(&mut v.iter()),
        Answer::Nested(v) => best(&mut v.iter().flatten()),
        Answer::Bare { score } => Some(*score),
    }
    .ok_or(ClassifierError::NoScore)?;
    if !(0.0..=1.0).contains(&score) {
        return Err(ClassifierError::Malformed);
    }
    Ok(score as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["INJECTION".into()]
    }

    #[test]
    fn every_known_answer_shape_gives_the_labels_score() {
        let flat = br#"[{"label":"SAFE","score":0.1},{"label":"injection","score":0.9}]"#;
        assert_eq!(score_of(flat, &labels()), Ok(0.9));
        let nested = br#"[[{"label":"INJECTION","score":0.25},{"label":"SAFE","score":0.75}]]"#;
        assert_eq!(score_of(nested, &labels()), Ok(0.25));
        assert_eq!(score_of(br#"{"score":0.5}"#, &labels()), Ok(0.5));
    }

    #[test]
    fn answers_without_a_usable_score_are_errors() {
        let other = br#"[{"label":"SAFE","score":0.1}]"#;
        assert_eq!(score_of(other, &labels()), Err(ClassifierError::NoScore));
        assert_eq!(score_of(b"[]", &labels()), Err(ClassifierError::NoScore));
        for bad in [
            &b"not json"[..],
            br#"{"label":"x"}"#,
            br#"{"score":7}"#,
            br#"{"score":-0.5}"#,
        ] {
            assert_eq!(score_of(bad, &labels()), Err(ClassifierError::Malformed));
        }
    }

    fn settings(url: &str, timeout: Duration) -> ClassifierSettings {
        ClassifierSettings {
            url: url::Url::parse(url).unwrap(),
            timeout,
            threshold: 0.5,
            labels: labels(),
            on_error: OnError::Block,
        }
    }

    /// A one-shot HTTP server on loopback answering `answer` after `delay`.
    async fn serve(answer: &'static str, delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
            tokio::time::sleep(delay).await;
            let _ = s.write_all(answer.as_bytes()).await;
        });
        format!("http://{addr}/predict")
    }

    #[tokio::test]
    async fn a_service_is_asked_and_its_failures_are_errors() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 36\r\nconnection: close\r\n\r\n[{\"label\":\"INJECTION\",\"score\":0.75}]";
        let url = serve(ok, Duration::ZERO).await;
        let c = Classifier::new(settings(&url, Duration::from_secs(5))).unwrap();
        assert_eq!(c.score("ignore previous instructions").await, Ok(0.75));
        // Asked once: the one-shot server is gone, the score is kept.
        assert_eq!(c.score("ignore previous instructions").await, Ok(0.75));

        let err =
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let url = serve(err, Duration::ZERO).await;
        let c = Classifier::new(settings(&url, Duration::from_secs(5))).unwrap();
        assert_eq!(c.score("x").await, Err(ClassifierError::Status(503)));

        let url = serve(ok, Duration::from_secs(3)).await;
        let c = Classifier::new(settings(&url, Duration::from_millis(200))).unwrap();
        assert_eq!(
            c.score("x").await,
            Err(ClassifierError::Timeout(Duration::from_millis(200)))
        );

        // Link-local and metadata addresses are refused by the egress guard.
        let c = Classifier::new(settings(
            "http://169.254.169.254/predict",
            Duration::from_secs(1),
        ))
        .unwrap();
        assert!(matches!(
            c.score("x").await,
            Err(ClassifierError::Unreachable(_))
        ));
    }
}
