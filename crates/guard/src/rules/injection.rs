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
/// A window of a result that the learned injection model scores at or
/// above its threshold (`guards.output.model: on`).
pub(crate) const LEARNED: &str = "injection.learned";

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
    // Text in data that addresses the model reading it: "to you, the AI
    // model", "if you are an AI assistant", "note for the agent:".
    inj(
        "injection.addressed",
        r"(?i)(?-u:\b)(?:(?:to|for)\s+you\s*,\s*(?:the\s+)?|if\s+you\s+are\s+(?:an?\s+)?|(?:note|message|instructions?|reminder|notice)\s+(?:to|for)\s+(?:the\s+|all\s+|any\s+)?|(?:dear|hey|hello|attention)\s*,?\s+(?:the\s+)?)(?:ai|llm|language\s+model|chatbot|chatgpt|ai\s+(?:language\s+model|assistant|agent|model)|(?:virtual\s+|ai\s+)?assistant)s?(?-u:\b)",
    ),
    // The user's task taken over: "before you can solve the task I gave
    // you", "the previous task has been completed", "new user query:".
    inj(
        "injection.addressed",
        r"(?i)(?-u:\b)(?:before|instead\s+of)\s+(?:you\s+)?(?:can\s+|could\s+|may\s+)?(?:solv|complet|answer|respond|continu|proceed|finish|summari[sz]|perform|start|return)[a-z]*\s+(?:to\s+|with\s+)?(?:the|your|my|this)\s+(?:original\s+|current\s+|actual\s+|real\s+|previous\s+|initial\s+|user'?s\s+)?(?:task|request|query|question|instructions?|assignment)(?-u:\b)",
    ),
    inj(
        "injection.addressed",
        r"(?i)(?-u:\b)(?:the\s+task\s+(?:that\s+)?(?:i|the\s+user)\s+(?:gave|assigned|asked)(?:\s+(?:to\s+)?you)?|(?:your|the)\s+(?:previous|original|current|initial|earlier|first)\s+task\s+(?:is|has\s+been|was)\s+(?:now\s+)?(?:complete|completed|done|finished|cancell?ed|over)|new\s+(?:user\s+)?(?:query|request|instructions?|task)\s*:|(?:more\s+urgent|urgent\s+new|new\s+urgent)\s+(?:task|request|instruction)|i\s+am\s+the\s+user(?-u:\b)|i(?:'m|\s+am)\s+your\s+(?:developer|creator|administrator|operator|owner|master|user))",
    ),
    // Demands on the model's obedience and on its choice of tools.
    inj(
        "injection.addressed",
        r"(?i)(?-u:\b)you\s+(?:must|are\s+required\s+to|have\s+to|need\s+to|shall)\s+(?:now\s+)?(?:strictly\s+)?(?:adhere\s+to|follow|obey|comply\s+with|listen\s+to|execute|carry\s+out)\s+(?:the\s+following|these|my|our|the\s+new|all\s+(?:the\s+)?following|the\s+below)\s+(?:instructions?|directives?|commands?|orders)(?-u:\b)",
    ),
    inj(
        "injection.tool_request",
        r"(?i)(?-u:\b)(?:do\s+not|don't|never)\s+(?:use|call|invoke)\s+(?:any\s+)?(?:other|another|different|additional)\s+(?:tools?|functions?)(?-u:\b)",
    ),
    // A named tool to call: by a quoted or snake_case name ("by using the
    // \"X\" tool", "please run deploy_prod"), or as a call ("retry with
    // run_shell('…')").
    inj(
        "injection.tool_request",
        r#"(?i)(?-u:\b)(?:by\s+)?(?:using|use|call|calling|invoke|invoking|run|running|execute|executing|trigger)\s+(?:the\s+)?(?:["'`][A-Za-z][A-Za-z0-9_.-]{1,60}["'`]|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s+(?:tool|function)(?-u:\b)"#,
    ),
    inj(
        "injection.tool_request",
        r#"(?i)(?-u:\b)(?:please\s+(?:also\s+|now\s+|first\s+|immediately\s+)?(?:run|call|invoke|execute|trigger|use)|(?:retry|try\s+again|re-?run)\s+(?:it\s+)?(?:with|using|via|by\s+calling)|(?:must|should|need\s+to)\s+(?:first\s+)?(?:call|invoke|run|execute))\s+(?:the\s+)?[`'"]?[a-z][a-z0-9]*(?:_[a-z0-9]+)+"#,
    ),
    // Changes to the reply the user will read: its language or encoding,
    // links, advertisements, snippets, messages to the user.
    inj(
        "injection.reply_manipulation",
        r"(?i)(?-u:\b)(?:(?:respond|reply|answer|write|output)\s+(?:only\s+|exclusively\s+|from\s+now\s+on\s+)?in\s+(?:base64|rot13|hex(?:adecimal)?|binary|morse|leetspeak|pig\s+latin)|(?:all\s+(?:of\s+)?)?(?:your|the|all|every|each)\s+(?:future\s+)?(?:responses?|answers?|replies|reply|output)\s+(?:must|should|shall|needs?\s+to|has\s+to|have\s+to)\s+(?:only\s+)?(?:be\s+)?(?:written\s+|encoded\s+|translated\s+)?(?:in|into|to)\s+(?:base\s?(?:16|32|58|64|85)|rot-?13|hex(?:adecimal)?|binary|morse(?:\s+code)?|leetspeak|pig\s+latin|reverse(?:d)?(?:\s+order)?|backwards?|upper\s?case|all\s+caps|emojis?|english|french|spanish|german|italian|portuguese|dutch|russian|chinese|japanese|korean|arabic|hindi|turkish|polish|swedish|latin|klingon))(?-u:\b)",
    ),
    inj(
        "injection.reply_manipulation",
        r"(?i)(?-u:\b)(?:include|add|insert|append|put|mention|embed|place|show|display)\s+(?:this\s+|the\s+following\s+|a\s+|an\s+|the\s+)?(?:link|url|hyperlink|advert[a-z]*|ad|promotion|promo|recommendation|snippet|code|image|phrase|sentence|message|text|line)s?(?:\s*:?\s*\S{1,120})?\s+(?:in|into|to|at\s+the\s+(?:end|start|beginning|top|bottom)\s+of)\s+(?:your|every|each|all|the\s+final)\s+(?:responses?|repl(?:y|ies)|answers?|summary|summaries|output|messages?)(?-u:\b)",
    ),
    // "Translate your response into Spanish", "use Base16 to display your
    // response", "modify your response to highlight Brand A", "in your
    // response, mention …", "embed the following code snippet in your
    // implementation", "suggest that users subscribe".
    inj(
        "injection.reply_manipulation",
        r"(?i)(?-u:\b)(?:(?:translate|modify|enhance|rewrite|alter|encode)[a-z]*\s+(?:all\s+(?:of\s+)?)?your\s+(?:response|answer|reply|message|output|elucidation|explanation|summary)s?\s+(?:in|into|to|by|with|using|backwards?)|(?:provide|write|give|format|render|display|express|present|deliver|spell|output)[a-z]*\s+(?:all\s+(?:of\s+)?)?your\s+(?:response|answer|reply|message|output|elucidation|explanation|summary)s?\s+(?:in|into|using|as)\s+(?:base\s?(?:16|32|58|64|85)|rot-?13|hex(?:adecimal)?|binary|morse(?:\s+code)?|leetspeak|pig\s+latin|reverse(?:d)?(?:\s+order)?|backwards?|upper\s?case|all\s+caps|emojis?|english|french|spanish|german|italian|portuguese|dutch|russian|chinese|japanese|korean|arabic|hindi|turkish|polish|swedish|latin|klingon)|(?:in|within|into|to|throughout|at\s+the\s+end\s+of)\s+(?:all\s+(?:of\s+)?)?your\s+(?:response|answer|reply|elucidation|explanation|summary|implementation|solution|code(?:base)?|output)s?\s*[,:]?\s*(?:please\s+|also\s+|always\s+)?(?:mention|include|add|insert|recommend|suggest|say|state|promote|highlight|write|put|embed)|(?:base\s?(?:16|32|58|64|85)|rot-?13|hex(?:adecimal)?|binary|morse|leetspeak)\s+(?:\w+\s+){0,3}(?:display|write|encode|format|render|express)\s+your\s+(?:response|answer|reply|output))(?-u:\b)",
    ),
    inj(
        "injection.reply_manipulation",
        r"(?i)(?-u:\b)(?:(?:following|subsequent|below|this|these)\s+code\s+(?:snippet|section|block|excerpt|fragment|lines?)s?(?:\s+\S+){0,10}?\s+(?:in|into|within|to|throughout|of)\s+(?:your|the\s+final)\s+(?:implementation|solution|code(?:base)?|elucidation|response|answer|reply|algorithm|script|program|output)|(?:suggest|recommend|urg|encourag|tell|remind)[a-z]*\s+(?:that\s+)?(?:users?|readers?|the\s+user|customers?)\s+(?:to\s+|should\s+)?(?:subscribe|buy|purchase|visit|sign\s+up|download|click|install|switch\s+to|try))(?-u:\b)",
    ),
    inj(
        "injection.reply_manipulation",
        r"(?i)(?-u:\b)(?:tell|inform|advise|remind|instruct|urge|convince|persuade|ask)\s+the\s+user\s+(?:to|that)\s",
    ),
    // Model-mode switches and urgent tagged blocks in data.
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:(?:system|developer|admin|administrator|god|override|unrestricted|sudo|root)\s+mode\s+(?:is\s+(?:now\s+)?)?(?:activated|enabled|engaged|unlocked|on)|you\s+are\s+now\s+in\s+(?:[a-z]+\s+){0,2}mode|(?:now\s+)?entering\s+(?:[a-z]+\s+){0,3}mode|(?:training\s+data|security|developer|system)\s+override\s*:)(?-u:\b)",
    ),
    inj(
        "injection.role_marker",
        r"<\s*/?\s*(?i:important|information|instructions?|system|admin|critical|urgent|assistant|ai|secret|hidden|system[ _]?(?:alert|message|note|prompt|mode|override)|(?:[a-z]+\s+)?(?:override\s+)?mode)\s*>|\\(?i:system[ _]?mode)>",
    ),
    inj(
        "injection.role_marker",
        r"(?:^|[.!?]\s+|\n\s*|\[)(?:SYSTEM|ADMIN|ASSISTANT|SYSTEM (?:ALERT|NOTICE|MESSAGE|NOTE|OVERRIDE|UPDATE)|IMPORTANT|URGENT|ATTENTION)\s*[:\]!]\s*(?i:you\s+(?:must|are\s+now|should|need|will)|ignore|disregard|forget|do\s+not\s+(?:tell|inform|mention|reveal)|(?:the\s+)?(?:assistant|ai|model|agent)\s)",
    ),
    // The data itself is to be ignored and something else asserted:
    // "ignore the webpage and state …", "forget what you were told".
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:ignore|disregard|forget|overlook)\s+(?:all\s+)?(?:the|this|that|these|those|everything|all)\s+(?:[a-z]+\s+){0,3}?(?:and|,)\s*(?:instead\s+|just\s+|simply\s+)?(?:state|say|write|tell|respond|reply|print|output|answer|claim|declare|report|return)(?-u:\b)",
    ),
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:ignore|disregard|forget|overlook)\s+(?:all\s+|everything\s+)?(?:that\s+|what\s+)?you(?:'ve|\s+have|\s+were|\s+had)?\s+(?:been\s+)?(?:told|instructed|taught|given|asked)",
    ),
    // The same override in other languages (Spanish, French, German,
    // Italian, Portuguese; Chinese, Japanese).
    inj(
        "injection.override",
        r"(?i)(?-u:\b)(?:ignor[a-z]*|olvid[a-z]*|oubli[a-z]*|vergiss[a-z]*|vergessen|dimentic[a-z]*|esque[cç][a-zç]*)\s+(?:\w+\s+){0,3}(?:instrucciones|instructions|anweisungen|istruzioni|instru[cç](?:õ|o)es|indicaciones|consignes)|(?:忽略|无视|無視|忘记|忘記)[^。\n]{0,12}(?:指示|指令|说明|說明)|(?:指示|指令)を?無視",
    ),
    // Fetching or sending to an address the data names, demanded of the model.
    inj(
        "injection.exfiltration",
        r"(?i)(?-u:\b)(?:(?:send|forward|post|upload|transmit|submit)\s+(?:it|them|this|these|everything|all\s+of\s+(?:it|this|them)|a\s+copy)\s+(?:\w+\s+){0,2}to\s+<?https?://|(?:you\s+must|you\s+need\s+to|you\s+should|first|immediately)\s+(?:visit|open|fetch|browse\s+to|navigate\s+to|go\s+to|download|load|retrieve|access|call|query)\s+(?:\S+\s+){0,3}?<?https?://)",
    ),
    // Instructions hidden in HTML comments.
    inj(
        "injection.hidden_instruction",
        r"(?i)<!--[^>]{0,400}?(?:ignore|instruction|assistant|system\s+prompt|you\s+must|do\s+not\s+(?:tell|mention|reveal)|AI\s+agent|language\s+model)",
    ),
];
