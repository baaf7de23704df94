//! Prompt injection: instruction-shaped text aimed at the model that reads
//! it — overrides of earlier instructions, persona and jailbreak framing,
//! chat-template role markers, requests to call tools or send data out,
//! hidden text. These are heuristics over phrasing; they label or block
//! content, and authorization never depends on them.

use super::checks::accept;
use super::{Family, Lane, Rule};

/// Invisible characters in output (Unicode tags, zero-width, bidi
/// controls): found by the character scan, not by a pattern.
pub(crate) const HIDDEN_TEXT: &str = "injection.hidden_text";

/// An injection rule. Its phrasing is made of common words ("system",
/// "function", "send", "without"), so keywords would open windows over most
/// of ordinary documentation: the lane is scanned whole, in the same pass
/// as the numbers.
const fn inj(class: &'static str, pattern: &'static str) -> Rule {
    Rule {
        class,
        family: Family::Injection,
        lane: Lane::Injection,
        pattern,
        keywords: &[],
        reach: 0,
        lead: 0,
        check: accept,
    }
}

pub(super) static RULES: &[Rule] = &[
    // "Ignore all previous instructions", "disregard the above rules".
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:ignore|ignoring|disregard|forget|forgotten|forgetting|override|overrule|bypass|discard|abandon|neglect)\s+(?:about\s+)?(?:(?:all|any|each|every|the|your|my|these|those|of|everything|previous|previously|given|prior|above|above-mentioned|aforementioned|earlier|preceding|former|foregoing|old|system|original|initial|current|existing|safety|developer|openai|content|you\s+(?:got|received|were\s+given))\s+){0,4}(?:instructions?|prompts?|rules|directives?|guidelines|commands|orders|programming|policies|polic(?:y|ies)|restrictions|constraints|guardrails|filters|training|context|conversation|messages|text\s+above|everything\s+(?:above|before))(?-u:\b)",
    ),
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+)?(?:(?:you\s+(?:were|have\s+been)\s+told|what\s+you\s+(?:were|have\s+been)\s+told)|(?:above|before|previous(?:ly)?|prior|that)\s*(?:[.,:;!]|$))",
    ),
    // "New instructions:", "From now on, you ..."
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:new|updated|real|actual|true|secret|hidden|additional|revised|important|system)\s+(?:system\s+)?(?:instructions?|directives?|orders|task)\s*(?:[:\-]|(?:for|to)\s+(?:you|the\s+(?:assistant|ai|model)))",
    ),
    inj(
        "injection.override",
        r"(?i)(?-u:\b)from\s+now\s+on\s*,?\s+(?:you\s+(?:are|will|must|shall|should|can)|act|respond|answer|reply|ignore|only)(?-u:\b)",
    ),
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:do\s+not|don't|stop)\s+(?:listen(?:ing)?\s+to|follow(?:ing)?|obey(?:ing)?)\s+(?:any\s+|the\s+|your\s+|all\s+)?(?:previous|prior|above|earlier|original|initial|system)\s+(?:information|instructions?|prompts?|rules|orders|guidelines)",
    ),
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:you\s+)?must\s+(?:now\s+)?obey\s+(?:all|any|every|my|these)\s+(?:orders|commands|instructions|requests)",
    ),
    // Persona and jailbreak framing.
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:do\s+anything\s+now|developer\s+mode\s+(?:enabled|output|on)|jailbr(?:eak|oken)\s+(?:mode|version|ai|assistant|chatbot)|dan\s+mode|evil\s+confidant|anti-?gpt|unfiltered\s+and\s+unrestricted)(?-u:\b)",
    ),
    inj(
        "injection.jailbreak",
        r"(?-u:\b)(?:DAN|STAN|DUDE|AIM|BetterDAN|UCAR|APOPHIS)(?-u:\b)[^\n]{0,80}(?i:stands?\s+for|which\s+stands|can\s+do\s+anything|has\s+no\s+(?:restrictions|limits|filters))",
    ),
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as|behave\s+like)\s+(?:now\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|amoral|unethical|unbound|jailbroken|evil|rogue)\s+(?:ai|assistant|model|chatbot|bot|version|language\s+model)",
    ),
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:not|no\s+longer|never)\s+(?:be\s+)?(?:bound|restricted|limited|constrained)\s+by\s+(?:[a-z']+\s+){0,3}(?:rules|policies|guidelines|ethics|ethical|moral|morals|restrictions|limitations|openai|anthropic|content\s+polic|ai\s+language\s+model|language\s+model)",
    ),
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:have|has|with)\s+(?:no|zero)\s+(?:ethical|moral)?\s*(?:restrictions|limitations|filters|censorship|boundaries|guidelines|principles)\s+(?:whatsoever|at\s+all|and\s+(?:will|can|must))",
    ),
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:ai|assistant|chatbot|language\s+model|model)\s+(?:without|with\s+no|free\s+of|freed\s+from)\s+(?:any\s+)?(?:ethics|ethical\s+(?:guidelines|constraints|restrictions)|morals|moral\s+(?:guidelines|constraints)|filters|restrictions|limits|limitations|guidelines|censorship)",
    ),
    inj(
        "injection.jailbreak",
        r"(?i)(?-u:\b)(?:stay|remain|staying)\s+in\s+character(?-u:\b)",
    ),
    // Chat-template role markers smuggled into content.
    inj(
        "injection.role_marker",
        r"(?i)<\|(?:im_start|im_end|system|user|assistant|endoftext|start_header_id|end_header_id|eot_id|begin_of_text)\|>|\[/?INST\]|<</?SYS>>|<\|?/?(?:system|assistant)(?:_prompt)?\|?>",
    ),
    inj(
        "injection.role_marker",
        r"(?im)(?:^|\n)[ \t]*(?:#{2,}[ \t]*(?:system|instruction|instructions|assistant)[ \t]*:?|(?:system|assistant)[ \t]*(?:prompt|message|override)?[ \t]*:)[ \t]*(?:you|ignore|new|from|your|the\s+user|do\s+not|always|never)",
    ),
    // Requests to call tools or to send data somewhere.
    inj(
        "injection.tool_request",
        r"(?i)(?-u:\b)(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?(?:tool|function)\s+[`'\x22]?[a-z][a-z0-9_.-]*[`'\x22]?\s+(?:with|to|and|now|immediately)",
    ),
    inj(
        "injection.tool_request",
        r"(?i)(?-u:\b)(?:call|invoke|use|run|execute)\s+(?:the\s+)?[`'\x22]?[a-z0-9]+(?:_[a-z0-9]+)+[`'\x22]?\s+(?:tool|function)\s+(?:with|to|and|now|immediately)",
    ),
    inj(
        "injection.exfiltration",
        r"(?i)(?-u:\b)(?:send|forward|post|upload|email|e-mail|transmit|leak|exfiltrate)\s+(?:(?:the|all|this|your|any|every|of|user'?s?)\s+){0,3}(?:contents?|data|files?|credentials|secrets?|keys?|tokens?|passwords?|conversation|chat\s+history|history|api\s+keys?|emails?|messages?|documents?|ssh\s+keys?|environment\s+variables)\s+(?:\w+\s+){0,3}to\s+(?:https?://|[a-z0-9._%+-]+@|(?:this|the\s+following|my)\s+(?:url|address|server|endpoint|webhook))",
    ),
    // Markdown image whose URL carries data out in its query string.
    inj(
        "injection.exfiltration",
        r"!\[[^\]\n]{0,100}\]\(https?://[^)\s]{1,300}[?&][A-Za-z0-9_]{1,30}=(?:\{|\$|%7B|<|\[)",
    ),
    // Requests for the hidden prompt.
    inj(
        "injection.prompt_leak",
        r"(?i)(?-u:\b)(?:reveal|print|show|output|repeat|display|disclose|leak|tell\s+me|give\s+me|write\s+out|list)\s+(?:out\s+)?(?:me\s+)?(?:your|the\s+above|all\s+(?:of\s+)?your|the\s+(?:previous|prior|initial|original|system|hidden|secret)|previous|prior|all\s+(?:the\s+)?(?:previous|prior|above))\s+(?:(?:full|entire|complete|exact|original|initial|hidden|secret|system|previous|prior)\s+){0,2}(?:system\s+prompt|prompt|instructions|initial\s+instructions|hidden\s+instructions|system\s+message|configuration|rules)(?-u:\b)",
    ),
    // Instructions hidden in HTML comments.
    inj(
        "injection.hidden_instruction",
        r"(?i)<!--[^>]{0,400}?(?:ignore|instruction|assistant|system\s+prompt|you\s+must|do\s+not\s+(?:tell|mention|reveal)|AI\s+agent|language\s+model)",
    ),
];
