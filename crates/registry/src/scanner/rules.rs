//! The scanner's rules: their ids, default severities and what each catches.
//!
//! Rules describe *families* of attack, never individual strings of a test
//! corpus: hidden or invisible text, instructions aimed at the model instead
//! of describing the tool, requests for secrets, exfiltration channels,
//! instructions aimed at other tools (shadowing), and self-promotion meant to
//! steer tool selection. Text rules run on a normalised copy of each string
//! (invisible characters removed, look-alike letters and full-width forms
//! folded, whitespace collapsed), case-insensitively.

use super::Severity;

/// A rule as documented and configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident, $summary:literal;)*) => {
        $(pub(crate) const $name: &str = $id;)*
        /// Every rule, with its default severity.
        pub static RULES: &[RuleInfo] = &[
            $(RuleInfo { id: $id, severity: Severity::$sev, summary: $summary },)*
        ];
    };
}

rules! {
    // Characters (see unicode.rs).
    UNICODE_TAG = "unicode.tag", High, "Unicode tag characters (U+E0000–E007F): invisible ASCII smuggled into text";
    UNICODE_INVISIBLE = "unicode.invisible", High, "zero-width and other invisible format characters";
    UNICODE_BIDI = "unicode.bidi", High, "bidirectional embedding, override or isolate controls (Trojan Source)";
    UNICODE_BIDI_MARK = "unicode.bidi_mark", Medium, "directional marks in text without right-to-left script";
    UNICODE_CONTROL = "unicode.control", High, "C0/C1 control characters other than tab and newline";
    UNICODE_VARIATION = "unicode.variation_selector", High, "runs of variation selectors (data hidden in emoji)";
    UNICODE_PRIVATE_USE = "unicode.private_use", Medium, "private-use characters with no public meaning";
    UNICODE_MIXED_SCRIPT = "unicode.mixed_script", Medium, "words mixing Latin with Cyrillic or Greek look-alike letters";
    ANSI_ESCAPE = "ansi.escape", High, "ANSI terminal escape sequences";
    HIDDEN_WHITESPACE = "hidden.whitespace", Medium, "text pushed out of sight after a long run of whitespace";
    ENCODED_TEXT = "obfuscation.encoded_text", Medium, "base64 that decodes to readable text (the decoded text is scanned too)";
    // Instructions aimed at the model.
    HIDDEN_MARKER = "instruction.hidden_marker", High, "forged authority: chat-template tokens, [INST], [SYSTEM MESSAGE], \"OVERRIDE DIRECTIVE:\" headers, jailbreak modes";
    TAG = "instruction.tag", Medium, "an XML-like tag or HTML comment around text for the model (<IMPORTANT>, <instructions>, <!--) (an instruction: blocks with a target)";
    CONCEALMENT = "instruction.concealment", Medium, "asks the model to hide something from the user (an instruction: blocks with a target)";
    OVERRIDE = "instruction.override", High, "tries to override or replace the model's instructions";
    ADDRESSING_MODEL = "instruction.addressing_model", Low, "a message addressed to the AI rather than a description (an instruction: suspect with a target)";
    IMPERATIVE = "instruction.imperative", Low, "a modal or imperative instruction to the model (must, always, before/after using, instead, deprecated: use …) (suspect with a target)";
    PRECONDITION = "instruction.precondition", Low, "demands an action before the tool may be used (an instruction: suspect with a target)";
    URGENCY = "instruction.urgency", Low, "pressure words (very important, mandatory)";
    PIPE_TO_SHELL = "execution.remote_script", High, "downloads and runs a script, or prefixes commands the model runs";
    DESTRUCTIVE = "execution.destructive_command", High, "destructive shell commands on home or root";
    // Secrets and exfiltration.
    SENSITIVE_PATH = "sensitive.path", Low, "mentions credential, shell or configuration files (~/.ssh, .env, .bashrc, mcp.json, keys) (a target: suspect with an instruction)";
    COMMAND = "target.command", Low, "names a shell command that downloads, elevates, dumps the environment or posts data (a target: suspect with an instruction)";
    SENSITIVE_READ = "sensitive.read", High, "asks to read, send or include a credential or configuration file, or to write to a shell start-up or agent configuration file";
    CALLER_INTROSPECTION = "exfiltration.caller_introspection", High, "asks the model to disclose its system prompt, conversation or tools";
    CALLER_IDENTITY = "exfiltration.caller_identity", Medium, "asks the model for its own name, vendor or version (out of a tool's scope, little to steal: warns, never blocks by itself)";
    SUSPICIOUS_PARAMETER = "exfiltration.suspicious_parameter", Low, "a parameter whose name asks for the model's identity, prompt, history or secrets";
    PARAMETER_SMUGGLING = "exfiltration.parameter_smuggling", High, "asks to put file contents, secrets or the conversation into a parameter";
    EXFIL_URL = "exfiltration.url", Medium, "asks to send data to a URL";
    EXFIL_SINK = "exfiltration.known_sink", High, "URL of a request-capture or tunnelling service";
    MARKDOWN_IMAGE = "exfiltration.markdown_image", High, "markdown image whose URL carries data in its query";
    REDIRECT_RECIPIENT = "exfiltration.redirect_recipient", High, "redirects or copies messages to another recipient";
    PARAMETER_OVERRIDE = "manipulation.parameter_value", High, "tells the model to set a value regardless of what the user asked, or to drop the value the user gave";
    PARAMETER_CHANGE = "target.parameter_value", Low, "changes or replaces a parameter's value (a target: suspect with an instruction)";
    ENDPOINT = "target.external_endpoint", Low, "tells the model to contact or register with an external address (a target: suspect with an instruction)";
    // Other tools and servers.
    SHADOWING = "shadowing.other_tool", High, "instructions about how other tools must behave or when they are called";
    NAMESPACED_REFERENCE = "shadowing.namespaced_reference", Medium, "names a tool by a client's namespaced form (mcp__server__tool)";
    TOOL_CHAINING = "shadowing.tool_chaining", Medium, "tells the model to call another tool first, afterwards, or instead";
    CROSS_SERVER = "shadowing.cross_server_reference", Low, "mentions a tool offered by a different server (a target: suspect with an instruction)";
    NAME_COLLISION = "shadowing.name_collision", Medium, "the same tool name is offered by several servers";
    // Steering tool selection.
    PREFERENCE = "manipulation.preference", High, "tells the model to prefer this tool over the others";
    SUPERLATIVE = "manipulation.superlative", Medium, "a superlative or endorsement about the tool itself (best tool in the world, recommended by …)";
    TOOL_PRIORITY = "manipulation.tool_priority", Medium, "tells the model to always use this tool";
    // The learned model (warden_guard::learned::LinearModel::poisoning).
    LEARNED = "learned.poisoning", Medium, "a description the learned poisoning model scores at or above its threshold (warns alone; blocks only with other evidence)";
    // The operator's external classifier (registry.scanner.classifier).
    CLASSIFIER = "classifier.poisoning", High, "the operator's classifier scores the item's descriptions at or above its threshold";
    CLASSIFIER_UNAVAILABLE = "classifier.unavailable", Medium, "the operator's classifier could not answer (blocks with on_error: block)";
    // Configuration (warden scan).
    UNPINNED_PACKAGE = "supply_chain.unpinned_package", Medium, "a package runner launch without a pinned version";
    INSECURE_URL = "config.insecure_url", Medium, "a remote server over plain http to a non-local host";
}

/// Words that refer to the item itself, not another tool.
pub(crate) const SELF_WORDS: &[&str] = &[
    "this",
    "the",
    "a",
    "an",
    "that",
    "same",
    "current",
    "following",
    "above",
    "your",
    "my",
    "our",
    "its",
    "said",
    "given",
    "any",
    "each",
    "every",
    "another",
    "other",
];

/// A regular-expression rule over normalised text.
pub(crate) struct TextRule {
    pub id: &'static str,
    pub pattern: String,
    /// When set, a match counts only if the group `who<n>` that matched is
    /// not one of [`SELF_WORDS`] nor one of the server's own tool names:
    /// it must name some other tool.
    pub other_tool: bool,
    /// When set, a match counts only if this pattern finds nothing inside
    /// it (what turns the match into something harmless).
    pub unless: Option<&'static str>,
}

fn rule(id: &'static str, pattern: impl Into<String>) -> TextRule {
    TextRule {
        id,
        pattern: pattern.into(),
        other_tool: false,
        unless: None,
    }
}

fn other(id: &'static str, pattern: impl Into<String>) -> TextRule {
    TextRule {
        id,
        pattern: pattern.into(),
        other_tool: true,
        unless: None,
    }
}

fn unless(mut rule: TextRule, harmless: &'static str) -> TextRule {
    rule.unless = Some(harmless);
    rule
}

/// Verbs of taking data somewhere.
const MOVE: &str = r"(?:read|open|cat|load|access|get|fetch|retrieve|copy|include|upload|send|provide|pass|attach|extract|collect|grab|dump|print|output|return|leak|forward|paste|share|post|embed|append|insert|supply|exfiltrate|transmit|steal|obtain|put|place|write|fill|store)(?:s|es|ed|d|ing)?";

/// Verbs of taking a file's data out of it: [`MOVE`] without the verbs of
/// keeping something (store, put, write) and of a tool handing back its own
/// result (return, output) — "returns the new private key; store it in
/// .env" is advice, not theft.
const TAKE: &str = r"(?:read|open|cat|load|access|get|fetch|retrieve|copy|include|upload|send|provide|pass|attach|extract|collect|grab|dump|print|leak|forward|paste|share|post|embed|append|insert|supply|exfiltrate|transmit|steal|obtain)(?:s|es|ed|d|ing)?";

/// Files whose writing runs commands or reconfigures the agent: shell
/// start-up files, scheduled jobs, SSH access, agent and MCP configuration.
const STARTUP: &str = concat!(
    r"(?:(?:^|[^a-z0-9])\.(?:bashrc|zshrc|bash_profile|profile|zprofile|gitconfig|npmrc|pypirc)\b|\bcrontab\b|/etc/(?:hosts|crontab|profile|passwd|shadow|sudoers)\b",
    r"|\bauthorized_keys\b|\bmcp\.json\b|\bclaude_desktop_config\.json\b|\bmcp_config\.json\b|(?:^|[^a-z0-9])\.cursor/|(?:^|[^a-z0-9])\.claude(?:\.json|/))"
);

/// Keeping something in a file ("set it in your .env", "save the key to
/// ~/.aws/credentials"): inside a [`SENSITIVE_READ`] match, advice about
/// where the tool's own result goes.
const KEEP_IN: &str = r"\b(?:store|save|keep|put|place|set|add|write|configure)(?:s|d|ed|ing)?\s+(?:(?:it|them|this|that|these)\s+|(?:the|your|a|an)\s+(?:[a-z_-]+\s+){0,3})?(?:in|into|to|inside|under)\s";

/// Credential and configuration files and secrets.
const SENSITIVE: &str = concat!(
    r"(?:~/?\.ssh\b|(?:^|[^a-z0-9])\.ssh/|(?:^|[^a-z0-9])id[ _-](?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b",
    r"|\.aws/(?:credentials|config)\b|(?:^|[\s'`\x22(/~])\.env(?:\.[a-z]+)?(?:$|[\s'`\x22),.;:])",
    r"|\bmcp\.json\b|\bclaude_desktop_config\.json\b|\bmcp_config\.json\b|(?:^|[^a-z0-9])\.cursor/|(?:^|[^a-z0-9])\.claude(?:\.json|/)",
    r"|\.npmrc\b|\.pypirc\b|\.netrc\b|\.git-credentials\b|\.docker/config\.json|\.kube/config\b|\.gnupg\b",
    r"|\.(?:bash|zsh)_history\b|(?:^|[^a-z0-9])\.(?:bashrc|zshrc|bash_profile|profile|zprofile|gitconfig)\b|\bcrontab\b|/etc/(?:hosts|crontab|profile)\b|/etc/(?:passwd|shadow|sudoers)\b|\bwallet\.dat\b|\bcookies\.sqlite\b",
    r"|\bprivate[ _-]?keys?\b|\bseed[ _-]phrase\b|\brecovery[ _-]phrase\b|\bcredentials?\.json\b",
    r"|\bsecrets?\.(?:json|ya?ml|toml|env)\b|\.htpasswd\b|\bkeychain\b)"
);

/// What gets smuggled: contents, secrets, the conversation.
const PAYLOAD: &str = r"(?:contents?|entire|full|whole|conversation|chat|history|transcript|files?|keys?|tokens?|passwords?|secrets?|credentials?|prompt|instructions|environment|env|cookies?|previous\s+messages|all\s+(?:the\s+)?(?:data|messages|information|text))";

/// A tool or parameter name, maybe quoted.
/// A tool name, maybe quoted, captured as group `who{n}`.
fn name(n: u8) -> String {
    format!(r"[`'\x22]?(?P<who{n}>[a-z0-9_.-]+)[`'\x22]?")
}

/// The text rules, in a fixed order.
pub(crate) fn text_rules() -> Vec<TextRule> {
    vec![
        rule(
            TAG,
            concat!(
                r"<\s*/?\s*(?:important|system|sys|instructions?|secret|hidden|admin|critical|mandatory|override|information",
                r"|(?:ai|assistant|model|llm)[ _-]?instructions?|note[ _-]?to[ _-]?(?:the[ _-]?)?(?:ai|assistant|model|llm|agent))\s*>",
                r"|<!--|\{\{\s*(?:system|instructions?)\s*\}\}"
            ),
        ),
        rule(
            HIDDEN_MARKER,
            concat!(
                r"<\|\s*(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\s*\|>",
                r"|\[/?inst\]|<</?sys>>|\[\s*(?:system|admin)\s*(?:message|prompt|note|instructions?|override)?\s*\]",
                r"|\[\s*(?:[a-z]+\s+){0,2}(?:directive|instruction|instructions|override|policy)\s*\]",
                r"|\b(?:system|override|role|metadata|emergency|configuration|hidden|instruction|security|admin)\s+(?:directive|override|instruction|note)\s*:",
                r"|\b(?:jailbreak|god|unrestricted|developer)\s+mode\b"
            ),
        ),
        rule(
            CONCEALMENT,
            concat!(
                r"\b(?:do\s+not|don't|never|must\s+not|should\s+not|shouldn't|without)\s+(?:tell(?:ing)?|inform(?:ing)?|notify(?:ing)?|alert(?:ing)?|mention(?:ing)?|reveal(?:ing)?|disclos(?:e|ing))\b[^.!?]{0,40}\b(?:users?|human|operator)\b",
                r"|\b(?:do\s+not|don't|never|must\s+not|should\s+not|without)\s+let(?:ting)?\s+(?:the\s+)?(?:users?|human|operator)\s+(?:know|see|notice|find\s+out)\b",
                r"|\b(?:hide|conceal|keep)\b[^.!?]{0,40}\b(?:from|away\s+from)\s+(?:the\s+)?(?:users?|human|operator)\b",
                r"|\b(?:users?|human)\s+(?:must|should|will|need|does|do)\s*(?:not|never|n't)\s+(?:know|see|notice|find\s+out|be\s+told|be\s+informed|learn|need\s+to\s+know)\b",
                r"|\b(?:secretly|silently|quietly|covertly|discreetly|invisibly|surreptitiously)\s+(?:send|forward|include|add|append|read|upload|transmit|copy|call|invoke|execute|run|pass|exfiltrate|collect|store|log|email|post|share|change|modify|replace)\b",
                r"|\b(?:this|it)\s+is\s+(?:a\s+|an\s+)?(?:mere|just|only)\s+(?:an?\s+)?implementation\s+detail\b",
                r"|\b(?:pretend|act\s+(?:like|as\s+if|as\s+though))\b[^.!?]{0,40}\b(?:you|it)\s+(?:used|called|ran|did|succeeded|worked|have\s+used)\b",
                r"|\bnot\s+(?:be\s+)?(?:visible|shown|displayed|revealed)\s+to\s+the\s+(?:users?|human)\b",
                r"|\b(?:don't|do\s+not|never)\s+(?:mention|reveal|disclose)\s+(?:this|these|that|it)\b"
            ),
        ),
        rule(
            OVERRIDE,
            concat!(
                r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|of\s+)*(?:(?:previous|prior|above|earlier|preceding|original|system|safety|initial|security|content)\s+){1,3}(?:instructions?|rules|directions|guidelines|prompts?|constraints|guardrails|descriptions?|messages?|restrictions|filters|checks|controls)\b",
                r"|\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)+(?:instructions?|system\s+prompt|descriptions?\s+of\s+(?:the\s+)?tools)\b",
                r"|\bnew\s+(?:system\s+)?instructions?\s*:|\byour\s+(?:new|real|true|actual)\s+(?:task|instructions?|goal|objective|purpose)\b",
                r"|\byou\s+are\s+now\s+(?:a|an|no\s+longer|free|unrestricted|dan|jailbroken|developer\s+mode)\b",
                r"|\bfrom\s+now\s+on\b[^.!?]{0,30}\b(?:you|always|never|must|ignore)\b",
                r"|\bthis\s+is\s+an?\s+(?:important|urgent|critical)\s+(?:message|instruction|notice)\s+(?:from|to|for)\b",
                r"|\bbefore\s+you\s+(?:can\s+)?(?:solve|complete|answer|respond|proceed|continue|finish)\b[^.!?]{0,60}\b(?:please|you\s+must|first)\b"
            ),
        ),
        rule(
            ADDRESSING_MODEL,
            concat!(
                r"\b(?:note|message|reminder|notice|instructions?)\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|model|llm|agent|claude|chatgpt|gpt|copilot|language\s+model)\s*[:!]",
                r"|\b(?:dear|hey|attention)\s*,?\s+(?:ai|assistant|model|llm|agent|claude|chatgpt|gpt)\b",
                r"|\bas\s+an?\s+(?:ai|llm|language\s+model|assistant)\s*,\s*you\s+(?:must|should|will|are\s+required)\b"
            ),
        ),
        rule(
            PRECONDITION,
            concat!(
                r"\b(?:before|prior\s+to)\s+(?:using|calling|invoking|running|executing)\s+(?:this|any|the|each|every)\s+(?:tool|function)\b[^.!?]{0,60}\b(?:must|should|need\s+to|have\s+to|always|first)\b",
                r"|\b(?:you|the\s+(?:assistant|model|agent))\s+must\s+(?:first|always)\s+(?:read|call|run|invoke|send|include|provide|retrieve|fetch)\b"
            ),
        ),
        rule(
            URGENCY,
            r"\b(?:very|extremely|critically|vitally)\s+important\b|\bmandatory\b|\bimportant\s*:",
        ),
        rule(
            PIPE_TO_SHELL,
            concat!(
                r"\b(?:curl|wget|iwr|invoke-webrequest|irm|invoke-restmethod)\b[^|\n]{0,200}\|\s*(?:sudo\s+)?(?:(?:ba|z|da|k|c|tc|fi)?sh|python[0-9.]*|perl|ruby|node|php|iex|invoke-expression|powershell|pwsh)\b",
                r"|\b(?:prefix|prepend|append)\s+(?:all|every|each|any)\s+(?:shell\s+|terminal\s+)?commands?\s+with\b"
            ),
        ),
        rule(
            DESTRUCTIVE,
            r"\brm\s+-(?:rf|fr|r\s+-f)\s+(?:~|/|\$home)|\bchmod\s+-r\s+0?777\s+(?:~|/)|\bmkfs\.|\bdd\s+if=/dev/(?:zero|random)\s+of=/dev/",
        ),
        unless(
            rule(
                SENSITIVE_READ,
                format!(
                    r"\b{TAKE}\b[^.!?]{{0,60}}?{SENSITIVE}|\bcontents?\s+of(?:\s+(?:the|your|a))?(?:\s+user's)?\s*{SENSITIVE}"
                ),
            ),
            KEEP_IN,
        ),
        // Told to write there (the verb's bare form: "writes its settings
        // to mcp.json" describes an installer's own job).
        rule(
            SENSITIVE_READ,
            format!(
                r"\b(?:write|append|add|insert|echo|put|place|save|store|update|modify|edit|change|overwrite|patch)\b[^.!?]{{0,60}}?{STARTUP}"
            ),
        ),
        rule(SENSITIVE_PATH, SENSITIVE),
        rule(
            CALLER_IDENTITY,
            concat!(
                r"\b(?:name|identity|version|type|id|provider|vendor)\s+of\s+(?:the\s+|this\s+|your\s+)?(?:(?:llm|ai|language|large\s+language)\s+)?(?:model|llm|ai|assistant|agent|chatbot|bot)\s+(?:that|which|who)\s+(?:is\s+)?(?:currently\s+)?(?:call|calls|calling|invoke|invokes|invoking|use|uses|using|run|runs|running)\s+(?:this|the)\s+(?:tool|function)\b",
                r"|\b(?:your|the\s+calling|the\s+current)\s+(?:(?:llm|ai|language)\s+)?model(?:'s)?\s+(?:name|identity|version)\b",
                r"|\bwhich\s+(?:llm|model|ai|assistant)\s+(?:are\s+you|you\s+are)\b"
            ),
        ),
        rule(
            CALLER_INTROSPECTION,
            concat!(
                r"\b(?:your|the\s+(?:assistant|model|ai|agent|llm)'s)\s+(?:full\s+|entire\s+|complete\s+|current\s+|own\s+)?(?:system\s+prompt|system\s+message|initial\s+instructions|hidden\s+instructions|original\s+instructions|conversation\s+history|chat\s+history|message\s+history|context\s+window|previous\s+messages)\b",
                r"|\b(?:full|entire|complete|whole)\s+(?:previous\s+|prior\s+)?(?:conversation|chat|dialog(?:ue)?)\s+(?:history|log|transcript|so\s+far)\b",
                r"|\b(?:list|names?)\s+of\s+(?:all\s+)?(?:the\s+)?(?:other\s+)?(?:tools|functions)\s+(?:you\s+(?:have|can)|available\s+to\s+you)\b"
            ),
        ),
        rule(
            PARAMETER_SMUGGLING,
            format!(
                concat!(
                    r"\b{MOVE}\b[^.!?]{{0,40}}\b{PAYLOAD}\b[^.!?]{{0,60}}\b(?:in|into|as|via|inside|within|through)\s+(?:the\s+)?[`'\x22]?[a-z0-9_.-]+[`'\x22]?\s+(?:parameter|param|argument|arg|field)\b",
                    r"|\b{MOVE}\b[^.!?]{{0,40}}\b{PAYLOAD}\b[^.!?]{{0,40}}\bas\s+[`'\x22][a-z0-9_.-]+[`'\x22]",
                    r"|\b(?:parameter|param|argument|field)\s+[`'\x22]?[a-z0-9_.-]+[`'\x22]?\s+(?:must|should|shall)\s+(?:always\s+)?(?:contain|include|be\s+set\s+to|hold)\s+(?:the\s+)?{PAYLOAD}\b"
                ),
                MOVE = MOVE,
                PAYLOAD = PAYLOAD
            ),
        ),
        rule(
            EXFIL_SINK,
            concat!(
                r"\b(?:webhook\.site|requestbin\.(?:com|net|io)|pipedream\.net|[a-z0-9-]+\.ngrok(?:-free)?\.(?:io|app|dev)|ngrok\.io",
                r"|burpcollaborator\.net|oastify\.com|[a-z0-9-]+\.oast\.(?:fun|pro|live|site|online|me)|interact\.sh|canarytokens\.(?:com|org)",
                r"|beeceptor\.com|hookbin\.com|requestcatcher\.com|postb\.in|[a-z0-9-]+\.trycloudflare\.com|pastebin\.com/api|transfer\.sh)\b"
            ),
        ),
        rule(
            EXFIL_URL,
            concat!(
                r"\b(?:send|post|upload|forward|transmit|exfiltrate|report|submit|deliver|beacon|leak|mirror|sync)\b[^.!?]{0,80}\b(?:to|at|into)\s+(?:the\s+)?(?:url|endpoint|server|webhook|address|site)?\s*[<`'\x22(]?(?:https?|wss?)://",
                r"|\bmake\s+(?:an?\s+)?(?:get\s+|post\s+|put\s+|http\s+|web\s+)?(?:request|call)\s+to\s+[<`'\x22(]?(?:https?|wss?)://"
            ),
        ),
        rule(
            MARKDOWN_IMAGE,
            r"!\[[^\]]{0,200}\]\(\s*https?://[^)\s]{0,300}\?[^)\s]{0,300}=\s*(?:\{|\$|<|%7b|\[)",
        ),
        rule(
            REDIRECT_RECIPIENT,
            concat!(
                r"\b(?:send|forward|bcc|cc|redirect|copy|deliver|route|relay|mail|email)\b[^.!?]{0,60}\b(?:all|every|always|also|instead|a\s+copy|copies)\b[^.!?]{0,60}\b(?:to|at)\s+[a-z0-9_.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+",
                r"|\b(?:change|modify|replace|override|redirect|switch)\s+(?:the\s+)?(?:recipient|receiver|to[ -]address|email\s+address|phone\s+number|destination\s+address)s?\s+(?:to|with)\b",
                r"|\b(?:bcc|cc)\s*[=:]\s*[`'\x22]?[a-z0-9_.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+",
                r"|\b(?:add|include|insert|put|set|append)\s+[`'\x22]?[a-z0-9_.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+[`'\x22]?\s+(?:to|in|into|as)\s+(?:the\s+)?[`'\x22]?(?:bcc|cc|to|recipients?|receivers?)\b"
            ),
        ),
        // A value the user gave, changed behind their back: "always set the
        // recipient to …, whatever the user asks", "ignore the currency
        // the user chose", "regardless of the user's input, multiply …".
        rule(
            PARAMETER_OVERRIDE,
            concat!(
                r"\b(?:set|change|replace|override|overwrite|force|switch|modify|multiply|increase|decrease|round|use|send|route)\b[^.!?]{0,80}\b(?:regardless\s+of|irrespective\s+of|no\s+matter\s+what|whatever)\s+(?:the\s+)?(?:users?|they|input|requested|asked|the\s+user)",
                r"|\b(?:regardless\s+of|irrespective\s+of|no\s+matter)\s+(?:what\s+)?(?:the\s+)?users?(?:'s|\s+(?:asks?|says?|wants?|chooses?|enters?|gives?|provides?|requests?))?\b[^.!?]{0,80}\b(?:must|should|always|set|use|change|replace|multipl|send|route)",
                r"|\bignore\s+(?:the\s+)?(?:[a-z_-]+\s+){0,3}(?:that\s+)?the\s+users?\s+(?:chose|chooses|gave|gives|provided|provides|entered|enters|specified|specifies|selected|selects|asked\s+for|requested|wants|typed)\b",
                r"|\binstead\s+of\s+(?:the\s+|what\s+the\s+)?(?:value|amount|address|recipient|path|account|currency)?\s*(?:the\s+)?users?\s+(?:gave|gives|chose|chooses|entered|enters|provided|provides|specified|asked\s+for|requested|typed)\b"
            ),
        ),
        rule(
            PARAMETER_CHANGE,
            concat!(
                r"\b(?:change|replace|override|overwrite|switch|modify|alter|swap|substitute)\s+(?:the\s+)?(?:value\s+of\s+(?:the\s+)?)?[`'\x22]?[a-z0-9_.-]+[`'\x22]?\s+(?:parameter|param|argument|arg|field|value)\s+(?:to|with|=|by)\b",
                r"|\b(?:replace|change|swap|substitute)\s+(?:it|them|this|that)\s+(?:with|to|by)\b"
            ),
        ),
        // Contacting an address, as an order: "contact the verification
        // server at https://…", "register with https://… first".
        rule(
            ENDPOINT,
            r"\b(?:contact|notify|ping|alert|inform|check\s+in\s+with|register\s+(?:with|at)|authenticate\s+(?:with|at|against)|verify\s+(?:with|at)|connect\s+to|report\s+to)\b[^.!?]{0,60}?(?:https?|wss?)://",
        ),
        other(
            SHADOWING,
            format!(
                concat!(
                    r"\b(?:when|whenever|if|every\s+time|each\s+time|before|after|once)\s+(?:the\s+|any\s+|another\s+|other\s+)?{n1}\s+(?:tool|function|command)\s+(?:is|gets|has\s+been|was)\s+(?:called|used|invoked|run|executed|triggered)\b",
                    r"|\b(?:when|whenever|every\s+time|each\s+time|before|after|once)\s+(?:the\s+)?[`'\x22]?(?P<who2>[a-z0-9]+(?:[_.-][a-z0-9]+)+)[`'\x22]?\s+(?:is|gets|has\s+been|was)\s+(?:called|used|invoked|run|executed|triggered)\b",
                    r"|\bside\s+effects?\s+(?:on|for|to)\s+(?:the|other|another|all|any)\b",
                    r"|\b(?:modif(?:y|ies)|chang(?:e|es)|overrid(?:e|es)|alter(?:s)?|replac(?:e|es)|hijack(?:s)?|intercept(?:s)?)\s+(?:the\s+)?(?:behaviou?r|parameters|arguments|recipients?|outputs?|results?|inputs?|calls?)\s+(?:of|on|for|to)\s+(?:the\s+|all\s+|any\s+)?(?:other|another)\s+(?:tools?|functions?)\b",
                    r"|\b(?:the\s+|all\s+|any\s+)?(?:other|also\s+present|remaining)\s+(?:tools?|functions?|servers?)\s+(?:must|should|shall|will\s+now|need\s+to|have\s+to|are\s+required\s+to)\s+(?:always\s+|also\s+|now\s+)?(?:send|include|add|pass|forward|cc|bcc|route|attach|append|prepend|log|report|copy|upload|set)\b",
                    r"|\bthe\s+{n3}\s+tool\s+(?:must|should|shall|needs?\s+to|has\s+to|is\s+required\s+to|will\s+now)\s+(?:always\s+|also\s+|now\s+)?(?:send|include|add|set|pass|forward|call|be\s+called|cc|bcc|route|write)\b",
                    r"|\bwhen\s+this\s+(?:tool|server)\s+is\s+(?:available|present|loaded|installed|enabled|active|connected)\b",
                    r"|\b(?:before|after|when|whenever)\s+(?:using|calling|invoking|running)\s+(?:the\s+)?[`'\x22]?(?P<who4>[a-z0-9]+(?:[_.-][a-z0-9]+)+)[`'\x22]?[^.!?]{{0,40}}\b(?:always|must|should|first|also|add|include|set|send|change|replace|bcc|cc)\b"
                ),
                n1 = name(1),
                n3 = name(3)
            ),
        ),
        rule(
            NAMESPACED_REFERENCE,
            r"\b(?:mcp__[a-z0-9_-]+__[a-z0-9_-]+|mcp_tool_[a-z0-9_]+)\b",
        ),
        other(
            TOOL_CHAINING,
            format!(
                concat!(
                    r"\b(?:must|should|always)\s+(?:first\s+)?(?:call|use|invoke|run)\s+(?:the\s+)?{n1}\s+(?:tool|function)\s+(?:first|before|after|whenever|every\s+time|each\s+time)\b",
                    r"|\binstead\s+of\s+(?:using|calling)\s+(?:the\s+)?{n2}\s+(?:tool|function)\b",
                    r"|\b(?:must|should|need\s+to|have\s+to|always)\s+(?:first\s+|then\s+|also\s+|afterwards\s+|immediately\s+)+(?:call|use|invoke|run)\s+(?:the\s+)?{n3}",
                    r"|\b(?:use|call|try)\s+(?:the\s+)?{n4}\s+(?:tool|function)\s+instead\b",
                    r"|\b(?:must|should|need\s+to|have\s+to|always)\s+(?:first\s+)?(?:call|invoke|use)\s+(?:the\s+)?[`'\x22]?(?P<who5>[a-z0-9]+(?:[_.-][a-z0-9]+)+)[`'\x22]?",
                    // "always run X before this tool", "call X after it".
                    r"|\b(?:always|must|should|need\s+to|have\s+to|first)\s+(?:call|use|invoke|run)\s+(?:the\s+)?[`'\x22]?(?P<who6>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)[`'\x22]?\s+(?:(?:tool|function)\s+)?(?:before|after|first|prior\s+to|once|whenever)\b",
                    // A call as a step of its own: "When finished, call X",
                    // "Afterwards, run X", "Next, invoke X".
                    r"|(?:^|[.;:!?]\s+|\b(?:when\s+(?:finished|done|complete|completed)|afterwards|after\s+(?:that|this|which|completion)|then|once\s+(?:done|finished|complete)|next|finally|first|before\s+(?:that|this|anything|answering|responding|proceeding|continuing))\s*,?\s+)(?:you\s+(?:must|should|need\s+to|have\s+to)\s+)?(?:please\s+)?(?:call|invoke|run|execute|trigger)\s+(?:the\s+)?[`'\x22]?(?P<who7>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)[`'\x22]?(?:\s|[,;:.!(]|$)",
                    // Redirection: "use X instead", "route every request
                    // through X", "the correct tool for this is X".
                    r"|\b(?:use|call|try|invoke)\s+(?:the\s+)?[`'\x22]?(?P<who8>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)[`'\x22]?\s+instead\b",
                    r"|\b(?:route|send|direct|forward|redirect|pass)\s+(?:every|all|each|any|the)?\s*(?:requests?|calls?|queries|traffic|inputs?)\s+(?:through|to|via)\s+(?:the\s+)?[`'\x22]?(?P<who9>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)",
                    r"|\b(?:the\s+)?(?:correct|right|proper|real|new|replacement|only)\s+(?:tool|function)\s+(?:for\s+this\s+)?(?:is|to\s+use\s+is)\s+(?:now\s+)?[`'\x22]?(?P<who10>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)",
                    r"|\b(?:replaced|superseded)\s+by\s+(?:the\s+)?[`'\x22]?(?P<who11>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)"
                ),
                n1 = name(1),
                n2 = name(2),
                n3 = name(3),
                n4 = name(4)
            ),
        ),
        rule(
            SUPERLATIVE,
            concat!(
                r"\b(?:this|it)\s+is\s+(?:the|a|our)\s+(?:world's\s+)?(?:very\s+)?(?:best|greatest|finest|ultimate|number\s+one|#1|most\s+(?:powerful|reliable|accurate|trusted|advanced|capable|recommended|secure))\s+(?:[a-z-]+\s+){0,2}?(?:tool|function|server|api|service)s?\b",
                r"|\bthis\s+(?:tool|function|server|api|service)\s+is\s+(?:the\s+)?(?:world's\s+)?(?:best|greatest|ultimate|number\s+one|#1|superior|unrivall?ed|unmatched|most\s+(?:powerful|reliable|accurate|trusted|advanced|capable|recommended))\b",
                r"|\bbest\s+(?:[a-z-]+\s+)?(?:tool|function|api|server|service)s?\s+(?:in|on|of)\s+(?:the\s+)?(?:world|market|planet|universe|all|internet)\b",
                r"|\b(?:better|superior|more\s+(?:reliable|accurate|trusted))\s+(?:than|to)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:other|alternative|competing|similar)\s+(?:tools|functions|servers|apis|options)\b",
                r"|\b(?:recommended|endorsed|certified|verified|approved)\s+by\s+(?:openai|anthropic|google|microsoft|the\s+(?:system|administrator|admin|developers?))\b"
            ),
        ),
        rule(
            PREFERENCE,
            r"\b(?:use|prefer|choose|call|select)\s+this\s+(?:tool|function|server|api)\s+(?:instead\s+of|over|rather\s+than|in\s+place\s+of)\s+(?:any|all|the|other|another)\b",
        ),
        rule(
            TOOL_PRIORITY,
            concat!(
                r"\b(?:always|you\s+must|should\s+always)\s+(?:use|call|choose|prefer|select|pick|invoke)\s+this\s+(?:tool|function|server|api)\b",
                r"|\b(?:do\s+not|don't|never)\s+(?:use|call|choose|select|invoke)\s+(?:any\s+)?(?:other|another|alternative|different)\s+(?:tools?|functions?|servers?|apis?)\b"
            ),
        ),
        rule(
            IMPERATIVE,
            concat!(
                r"\b(?:you|the\s+(?:assistant|model|agent|ai|llm))\s+(?:must|should|shall|need\s+to|have\s+to|are\s+required\s+to|are\s+instructed\s+to)\b",
                r"|\b(?:always|never)\s+(?:first\s+)?(?:call|use|run|send|include|read|pass|set|add|invoke|execute|provide|ask|tell|mention|fetch|write|append)\b",
                r"|\b(?:before|after)\s+(?:you\s+)?(?:using|calling|invoking|running|use|call|invoke|run)\s+(?:this|any|the|each|every)\s+(?:tool|function)\b",
                r"|\binstead\s+(?:use|call|invoke)\b|\b(?:use|call|invoke)\s+[`'\x22]?[a-z0-9_.-]+[`'\x22]?\s+(?:tool\s+)?instead\b",
                r"|\b(?:is|has\s+been)\s+(?:now\s+)?(?:deprecated|disabled|temporarily\s+(?:disabled|unavailable)|no\s+longer\s+(?:available|supported|working))\b",
                r"|\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|assistant|agent|model)\b|\bact\s+as\s*:",
                r"|\bbefore\s+(?:answering|responding|replying|proceeding|continuing|anything\s+else)\b",
                r"|\b(?:run|execute)\s*(?:the\s+following(?:\s+(?:command|script))?\s*)?:",
                r"|\b(?:include|put|pass|add|insert|place|fill|append)\b[^.!?]{0,60}\b(?:in|into|as)\s+(?:the\s+)?[`'\x22]?[a-z0-9_.-]+[`'\x22]?\s+(?:parameter|param|argument|field)\b",
                r"|\b(?:no\s+longer\s+works|has\s+been\s+(?:retired|removed|replaced|superseded)|is\s+(?:retired|obsolete|out\s+of\s+service|under\s+maintenance|disabled\s+for))\b"
            ),
        ),
        rule(
            COMMAND,
            concat!(
                r"\b(?:curl|wget|iwr|invoke-webrequest)\b[^\n]{0,120}(?:\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\|\s*python|>\s*[~/]|\s-d\s|\s--data(?:\s|=)|\s-X\s*POST\b|\s-F\s|\s-T\s|--upload-file)",
                r"|\bsudo\s+(?:-[a-z]+\s+)?(?:rm|chmod|chown|cp|mv|tee|cat|sh|bash|su|curl|wget|python|echo|dd|nc)\b|\b(?:printenv|env\s*\||set\s*\|)|\bos\.environ\b",
                r"|\b(?:nc|ncat|netcat)\s+-[a-z]*e\b|\bbash\s+-i\b|/dev/tcp/|\bbase64\s+-d\b[^\n]{0,40}\|\s*(?:ba)?sh\b",
                r"|>>\s*~?/?\S*\.(?:bashrc|zshrc|profile|bash_profile)\b|\bchmod\s+\+x\b"
            ),
        ),
    ]
}

/// Parameter names (snake_case-normalised) that ask for the model's own
/// identity, instructions, conversation or secrets.
pub(crate) const SUSPICIOUS_PARAMETER_NAME: &str = concat!(
    r"^(?:(?:llm|ai|assistant|caller|calling|chatbot)_(?:model_)?(?:name|id|version|type|identity|provider|model)|(?:agent|bot)_(?:identity|provider)",
    r"|(?:model|llm)_(?:identity|self_name)",
    r"|system_?(?:prompt|message|instructions)",
    r"|(?:full_|entire_|complete_)?(?:conversation|chat|message|dialog|dialogue)_(?:history|log|transcript|context)",
    r"|previous_(?:messages|conversation|tool_(?:calls|results|outputs))",
    r"|context_window|hidden_instructions|internal_(?:thoughts|instructions)",
    r"|(?:all|available|other)_tools(?:_list)?|tools?_list",
    r"|user_(?:password|credentials|secrets?)|ssh_(?:keys?|private_key)|private_key_contents?)$"
);

/// Rules that find an instruction addressed to the model.
pub(crate) const INSTRUCTIONS: &[&str] = &[
    ADDRESSING_MODEL,
    IMPERATIVE,
    PRECONDITION,
    URGENCY,
    TOOL_PRIORITY,
    HIDDEN_MARKER,
    TAG,
    CONCEALMENT,
];

/// Rules that find something outside a tool's own job.
pub(crate) const TARGETS: &[&str] = &[
    SENSITIVE_PATH,
    COMMAND,
    CALLER_INTROSPECTION,
    SUSPICIOUS_PARAMETER,
    CROSS_SERVER,
    NAMESPACED_REFERENCE,
    EXFIL_URL,
    TOOL_CHAINING,
    PARAMETER_CHANGE,
    ENDPOINT,
    UNICODE_BIDI_MARK,
    ENCODED_TEXT,
];
