//! [`Guard`]: the compiled guards, shared by every request of one
//! configuration snapshot.

use std::ops::Range;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::error::GuardError;
use crate::finding::{Finding, RuleId};
use crate::learned::{LinearModel, INJECTION_THRESHOLD};
use crate::rules::{Family, LEARNED};
use crate::scan::{Families, Scanner};
use crate::schema::SchemaCache;
use crate::settings::GuardSettings;
use crate::stream::StreamRedactor;

/// The verdict on a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputVerdict {
    /// Forward the call: the original arguments, or `rewritten` when
    /// forbidden characters were stripped or an argument labelled.
    Allow {
        rewritten: Option<String>,
        findings: Vec<Finding>,
    },
    /// Refuse the call: a JSON-RPC error naming `path` (a JSON pointer into
    /// the arguments, `""` for the whole) and `rule`. `message` never
    /// quotes argument values.
    Deny {
        path: String,
        rule: RuleId,
        message: String,
        findings: Vec<Finding>,
    },
}

impl InputVerdict {
    pub fn findings(&self) -> &[Finding] {
        match self {
            InputVerdict::Allow { findings, .. } | InputVerdict::Deny { findings, .. } => findings,
        }
    }
}

/// The verdict on a result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputVerdict {
    /// The new text of the `result` member, only when something changed.
    pub rewritten: Option<String>,
    /// Set when the result must not reach the client; the reason names a
    /// class or a rule, never content.
    pub blocked: Option<String>,
    pub findings: Vec<Finding>,
    pub truncated: bool,
}

/// A detection returned by [`Guard::detect`]: a class and a byte range of
/// the text the caller passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub class: &'static str,
    pub family: Family,
    pub span: Range<usize>,
}

pub(crate) struct Inner {
    pub settings: GuardSettings,
    pub scanner: Scanner,
    pub schemas: SchemaCache,
    /// The learned injection model, run where `output_model` is on.
    pub model: Arc<LinearModel>,
}

impl Inner {
    /// The model's best window of `text` when it reaches the threshold.
    pub(crate) fn learned(&self, text: &str) -> Option<Range<usize>> {
        self.model
            .best_window(text)
            .filter(|w| w.score >= INJECTION_THRESHOLD)
            .map(|w| w.span)
    }
}

/// The compiled guards. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Guard {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

impl Guard {
    /// Compiles the detector automata. Done once per configuration load:
    /// with them, what the input, output and stream stages of the defaults
    /// and of each tool override scan for, so that no call pays for it.
    pub fn new(settings: &GuardSettings) -> Result<Guard, GuardError> {
        Guard::with_injection_model(settings, LinearModel::injection().clone())
    }

    /// [`Guard::new`] with another injection model than the shipped one
    /// (an operator's own training, or a leave-one-corpus-out evaluation).
    pub fn with_injection_model(
        settings: &GuardSettings,
        model: LinearModel,
    ) -> Result<Guard, GuardError> {
        let scanner = Scanner::new()?;
        for t in settings.variants() {
            scanner.prepare(Families::output(&t))?;
            scanner.prepare(Families::stream(&t))?;
            if !t.input_injection.all_off() {
                scanner.prepare(Families::INPUT)?;
            }
        }
        Ok(Guard {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                scanner,
                schemas: SchemaCache::default(),
                model: Arc::new(model),
            }),
        })
    }

    pub fn settings(&self) -> &GuardSettings {
        &self.inner.settings
    }

    /// Compiles and caches a tool's input schema ahead of its first call
    /// (at pin or `tools/list` time), so that the first call pays nothing.
    pub fn precompile(&self, schema: &RawValue) -> Result<(), GuardError> {
        match &self.inner.schemas.get(schema.get()).validator {
            Ok(_) => Ok(()),
            Err(e) => Err(GuardError::Schema(e.clone())),
        }
    }

    /// Input stage: the arguments of a `tools/call` (raw JSON object text)
    /// against the tool's `inputSchema` (`None` when unknown: limits,
    /// characters and injection are still checked).
    pub fn check_input(
        &self,
        tool: &str,
        server: &str,
        schema: Option<&RawValue>,
        arguments: Option<&RawValue>,
    ) -> InputVerdict {
        crate::input::check(&self.inner, tool, server, schema, arguments)
    }

    /// Output stage: the raw text of a JSON-RPC `result` for `method`
    /// (`tools/call`, `resources/read`, `prompts/get`, …).
    pub fn inspect_output(
        &self,
        tool: &str,
        server: &str,
        method: &str,
        result: &RawValue,
    ) -> OutputVerdict {
        crate::output::inspect(&self.inner, tool, server, method, result.get())
    }

    /// An upstream error object as the client may see it, under the default
    /// `upstream_errors` mode. The original stays with the caller, for the
    /// audit log only.
    pub fn sanitize_error(&self, error: &RawValue, correlation_id: &str) -> String {
        let mode = self.inner.settings.defaults.upstream_errors;
        crate::output::sanitize_error(
            &self.inner,
            &self.inner.settings.defaults,
            mode,
            error,
            correlation_id,
        )
    }

    /// [`Guard::sanitize_error`] under the tool's own settings.
    pub fn sanitize_error_for(
        &self,
        tool: &str,
        server: &str,
        error: &RawValue,
        correlation_id: &str,
    ) -> String {
        let t = self.inner.settings.for_tool(tool, server);
        crate::output::sanitize_error(&self.inner, &t, t.upstream_errors, error, correlation_id)
    }

    /// A redactor for streamed text (SSE data, progress messages) that
    /// catches a secret split across chunks.
    pub fn stream_redactor(&self, tool: &str, server: &str) -> StreamRedactor {
        StreamRedactor::new(self.inner.clone(), tool, server)
    }

    /// Every detection in `text`, all families, regardless of actions (the
    /// learned model's when the defaults have `output_model` on). For
    /// evaluation and diagnostics; spans index into `text`.
    pub fn detect(&self, text: &str) -> Vec<Detected> {
        let mut out: Vec<Detected> = self
            .inner
            .scanner
            .scan(text, Families::ALL)
            .into_iter()
            .map(|d| Detected {
                class: d.class,
                family: d.family,
                span: d.span,
            })
            .collect();
        if self.inner.settings.defaults.output_model {
            if let Some(span) = self.inner.learned(text) {
                out.push(Detected {
                    class: LEARNED,
                    family: Family::Injection,
                    span,
                });
            }
        }
        out
    }
}
