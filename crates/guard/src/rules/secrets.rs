//! Secrets: cloud keys, source-control and SaaS tokens, private keys,
//! credentials in URLs, headers and command lines, and generic
//! keyword-plus-random-value assignments. Formats are the providers'
//! documented ones.

use super::checks::{
    accept, assigned_password, assigned_secret, aws_key_id, bare_password, basic_pair,
    cli_password, connection_password, crc32_token, google_api_key, grafana_key, header_credential,
    jwt, keyword_token, otp_seed, padded_base64, paired_literal, paired_value, pem_base64,
    private_key, prose_password, quoted_password, quoted_salt, quoted_secret, random_token,
    requoted, setter_value, slash_password, url_password, user_colon_password,
};
use super::{Family, Lane, Rule};

/// A secret rule of `lane` whose match may start as far before its
/// keyword as it reaches after it.
const fn in_lane(
    lane: Lane,
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    Rule {
        class,
        family: Family::Secret,
        lane,
        pattern,
        keywords,
        reach,
        lead: reach,
        word_start: false,
        check,
    }
}

/// A rule of the specific lane whose every match starts with one of its
/// keywords after a word boundary (`(?-u:\b)` then the keyword): its
/// windows open only at word starts and reach forward only. Inside long
/// runs (base64 blobs, hashes, minified code) such keywords occur by chance
/// every few kilobytes, and each opened a window of twice its reach.
const fn prefixed(
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    at_word_start(secret(class, pattern, keywords, reach, check))
}

/// `rule`, whose every match starts with one of its keywords after a word
/// boundary (see [`prefixed`]).
const fn at_word_start(rule: Rule) -> Rule {
    Rule {
        word_start: true,
        ..from_keyword(rule)
    }
}

/// `rule`, whose every match starts with one of its keywords: its windows
/// reach forward only.
const fn from_keyword(rule: Rule) -> Rule {
    Rule { lead: 0, ..rule }
}

const fn secret(
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    in_lane(Lane::Secret, class, pattern, keywords, reach, check)
}

const fn generic(
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    in_lane(Lane::SecretGeneric, class, pattern, keywords, reach, check)
}

/// Rules whose keywords are rare (command names, constructors, hash
/// markers) run in a lane of their own: the specific lane opens windows at
/// frequent keywords (`://`, `|`, `-h`), and every pattern added to it
/// grows the automaton that runs there until its lazy DFA's cache thrashes
/// (measured: +50% scan time on ordinary code and documentation).
const fn context(
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    in_lane(Lane::SecretContext, class, pattern, keywords, reach, check)
}

/// Keyword-plus-value rules of shapes the generic lane's rules do not
/// take (names written apart from their values, setters, salts, command
/// lines fed a password on standard input), in a lane of their own after
/// it: the generic lane runs around every `key`, and a larger automaton
/// there thrashes its lazy DFA's cache.
const fn paired(
    class: &'static str,
    pattern: &'static str,
    keywords: &'static [&'static str],
    reach: usize,
    check: super::Check,
) -> Rule {
    in_lane(Lane::SecretPaired, class, pattern, keywords, reach, check)
}

/// [`PASSWORD_NAMED`]'s keywords, and more for a rule whose names also
/// end otherwise (`[_.-]pw`): one list, so the two cannot drift apart.
macro_rules! password_named {
    ($($more:literal),*) => {
        &["password", "passwd", "passphrase", "pwd", "passcode", "_pass", "-pass", ".pass" $(, $more)*]
    };
}

/// The keywords of rules whose match holds a name for a password or a
/// secret (`[a-z0-9_.-]*(?:password|…|salt)[a-z0-9_.-]*`).
const NAMED_SECRET: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "credential",
    "salt",
];

/// The keywords of rules whose match holds a name for a password
/// (`[a-z0-9_.-]*(?:password|…|[_.-]pass)`).
const PASSWORD_NAMED: &[&str] = password_named!();

pub(super) static RULES: &[Rule] = &[
    // PEM / OpenSSH / PGP private keys, whole, or cut off before the end
    // line; also when the lines are split into string literals
    // (`"-----BEGIN …\n" +`) or each carries a log prefix
    // (`2024-01-02 10:00:00 INFO MIIE…`): the body may hold quotes,
    // concatenation, brackets and timestamps between the base64 lines.
    secret(
        "private_key",
        r#"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s\\:,.()_"'`;|\[\]<>-]*?-----END[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----"#,
        &["private key"],
        16 << 10,
        private_key,
    ),
    secret(
        "private_key",
        r#"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.()_"'`;|\[\]-]|\\[nr])*[A-Za-z0-9+/=]{32}(?:[A-Za-z0-9+/=\s]|\\[nr])*"#,
        &["private key"],
        16 << 10,
        private_key,
    ),
    // PuTTY private key files.
    secret(
        "private_key",
        r"PuTTY-User-Key-File-[0-9]+: [^\n]+\n(?:[^\n]*\n){0,6}?Private-Lines: [0-9]+\s+(?P<s>[A-Za-z0-9+/=\s]{32,})",
        &["putty-user-key-file-"],
        16 << 10,
        random_token,
    ),
    // AWS access key ids: a four-letter kind prefix and 16 base-32 characters.
    prefixed(
        "aws_access_key",
        r"(?-u:\b)(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?-u:\b)",
        &["akia", "asia", "abia", "acca", "a3t"],
        32,
        aws_key_id,
    ),
    from_keyword(secret(
        "aws_secret_key",
        r#"(?i)aws[a-z0-9_.-]{0,30}(?:secret|private)[a-z0-9_.-]{0,20}["']?\s{0,4}(?:=|:|:=|=>)\s{0,4}["']?(?P<s>[A-Za-z0-9/+]{40})(?-u:\b)"#,
        &["aws"],
        160,
        random_token,
    )),
    // Amazon Bedrock API keys: "ABSK" + base64("BedrockAPIKey-…"), and the
    // short-lived presigned form.
    prefixed(
        "aws_bedrock_key",
        r"(?-u:\b)ABSKQmVkcm9ja0FQSUtleS(?P<s>[A-Za-z0-9+/]{64,}={0,2})",
        &["absk"],
        1024,
        padded_base64,
    ),
    secret(
        "aws_bedrock_key",
        r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%]{64,}",
        &["bedrock-api-key-"],
        4096,
        random_token,
    ),
    // Google: API keys, OAuth client secrets and access tokens, service
    // account key files.
    prefixed(
        "gcp_api_key",
        r"(?-u:\b)(?P<s>AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        &["aiza"],
        64,
        google_api_key,
    ),
    prefixed(
        "gcp_oauth_secret",
        r"(?-u:\b)GOCSPX-[A-Za-z0-9_-]{28}(?-u:\b)",
        &["gocspx-"],
        64,
        random_token,
    ),
    prefixed(
        "gcp_access_token",
        r"(?-u:\b)ya29\.[0-9A-Za-z_-]{30,}",
        &["ya29."],
        4096,
        random_token,
    ),
    secret(
        "gcp_service_account",
        r#""type"\s*:\s*"service_account""#,
        &["service_account"],
        64,
        accept,
    ),
    // Azure: Entra ID client secrets ("…8Q~…"), storage account keys, SAS
    // signatures.
    secret(
        "azure_client_secret",
        r#"(?:^|[\\'"`\s>=:(,)])(?P<s>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:$|[\\'"`\s<),])"#,
        &["q~"],
        64,
        random_token,
    ),
    secret(
        "azure_storage_key",
        r"(?i)AccountKey\s*=\s*(?P<s>[A-Za-z0-9+/]{86}==)",
        &["accountkey"],
        128,
        random_token,
    ),
    secret(
        "azure_sas_signature",
        r"[?&]sig=(?P<s>[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})",
        &["sig="],
        256,
        random_token,
    ),
    // GitHub: classic, OAuth, user-to-server, server-to-server, refresh
    // tokens, and fine-grained personal access tokens.
    prefixed(
        "github_token",
        r"(?-u:\b)(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}(?-u:\b)",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        64,
        crc32_token,
    ),
    prefixed(
        "github_token",
        r"(?-u:\b)github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?-u:\b)",
        &["github_pat_"],
        128,
        random_token,
    ),
    // GitLab: personal (legacy and routable), pipeline-trigger, runner,
    // deploy, feed, OAuth and other prefixed tokens, each at its documented
    // length; legacy runner registration tokens.
    secret(
        "gitlab_token",
        r"(?:^|[^A-Za-z0-9_])(?P<s>glpat-[A-Za-z0-9_-]{20}|glpat-[A-Za-z0-9_-]{27,300}\.[0-9a-z]{2}\.[a-z0-9]{7,9}|glptt-[A-Za-z0-9_-]{40}|glrt-(?:t[0-9]_)?[A-Za-z0-9_-]{20,}|gldt-[A-Za-z0-9_-]{20}|glft-[A-Za-z0-9_-]{20}|glsoat-[A-Za-z0-9_-]{20,}|glimt-[A-Za-z0-9_-]{25}|glagent-[A-Za-z0-9_-]{50,1024}|gloas-[A-Za-z0-9_-]{64}|glcbt-(?:[0-9a-fA-F]{1,5}_)?[A-Za-z0-9_-]{20}|glffct-[A-Za-z0-9_-]{20}|glrtr-[A-Za-z0-9_-]{20})(?:$|[^A-Za-z0-9_.-])",
        &[
            "glpat-", "glptt-", "glrt-", "gldt-", "glft-", "glsoat-", "glcbt-", "glimt-",
            "glagent-", "gloas-", "glffct-", "glrtr-",
        ],
        512,
        random_token,
    ),
    prefixed(
        "gitlab_token",
        r"(?-u:\b)GR1348941[A-Za-z0-9_-]{20}(?-u:\b)",
        &["gr1348941"],
        64,
        random_token,
    ),
    // Slack: bot, user, workspace, app-level and configuration tokens; webhooks.
    prefixed(
        "slack_token",
        r"(?-u:\b)xox[bpoasr]-[0-9]{8,13}-[0-9]{8,13}(?:-[0-9]{8,13})?-[A-Za-z0-9]{24,34}(?-u:\b)",
        &["xoxb-", "xoxp-", "xoxo-", "xoxa-", "xoxs-", "xoxr-"],
        160,
        random_token,
    ),
    prefixed(
        "slack_token",
        r"(?-u:\b)xox[bp]-[0-9]{10,13}-[A-Za-z0-9]{24}(?-u:\b)",
        &["xoxb-", "xoxp-"],
        64,
        random_token,
    ),
    // Legacy Slack tokens: numeric ids and a hex secret.
    prefixed(
        "slack_token",
        r"(?-u:\b)xox[abposr]-(?:[0-9]{1,2}-)?[0-9]{5,13}(?:-[0-9]{5,13}){0,3}-[a-f0-9]{16,64}(?-u:\b)",
        &["xoxb-", "xoxp-", "xoxo-", "xoxa-", "xoxs-", "xoxr-"],
        160,
        random_token,
    ),
    prefixed(
        "slack_token",
        r"(?-u:\b)xoxe(?:\.xox[bparose])?-[0-9]-[A-Za-z0-9]{140,170}(?-u:\b)",
        &["xoxe"],
        256,
        random_token,
    ),
    prefixed(
        "slack_token",
        r"(?-u:\b)xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-f0-9]{32,}(?-u:\b)",
        &["xapp-"],
        256,
        random_token,
    ),
    secret(
        "slack_webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9+/_-]{30,})",
        &["hooks.slack.com"],
        256,
        random_token,
    ),
    // Stripe secret and restricted keys, webhook signing secrets.
    prefixed(
        "stripe_key",
        r"(?-u:\b)(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,247}(?-u:\b)",
        &[
            "sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_",
        ],
        320,
        random_token,
    ),
    prefixed(
        "stripe_key",
        r"(?-u:\b)whsec_[A-Za-z0-9]{32,}(?-u:\b)",
        &["whsec_"],
        128,
        random_token,
    ),
    // OpenAI: keys carrying the "T3BlbkFJ" marker, and project / service
    // account / admin keys.
    secret(
        "openai_api_key",
        r"(?-u:\b)sk-(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
        &["t3blbkfj"],
        512,
        random_token,
    ),
    prefixed(
        "openai_api_key",
        r"(?-u:\b)sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}",
        &["sk-proj-", "sk-svcacct-", "sk-admin-"],
        512,
        random_token,
    ),
    // Anthropic API and admin keys: "sk-ant-api03-" + 93 characters + "AA".
    prefixed(
        "anthropic_api_key",
        r"(?-u:\b)sk-ant-(?:api|admin|oat|ort)[0-9]{2,4}-[A-Za-z0-9_-]{86,100}AA(?-u:\b)",
        &["sk-ant-"],
        160,
        random_token,
    ),
    // Credentials in HTTP headers (logged requests, curl command lines).
    secret(
        "http_authorization",
        r#"(?i)(?-u:\b)(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|token|api-?token|digest|negotiate|apikey|ntlm|ssws)\s+)?(?P<s>[A-Za-z0-9._~+/=:@!$%^&*#-]{8,})"#,
        &["authorization"],
        4096,
        header_credential,
    ),
    secret(
        "http_authorization",
        r#"(?i)(?:-H|--header)\s*["']\s*(?:x-)?[a-z0-9_-]*(?:api-?key|api-?token|token|secret|auth-?key|access-?key)\s*:\s*(?P<s>[^\s"']{8,})"#,
        &["-h", "--header"],
        512,
        header_credential,
    ),
    // JSON Web Tokens: header.payload.signature, both JSON objects in base64url.
    prefixed(
        "jwt",
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{10,}={0,2}\.eyJ[A-Za-z0-9_-]{10,}={0,2}(?:\.(?:[A-Za-z0-9_-]{10,}={0,2})?)?",
        &["eyj"],
        8192,
        jwt,
    ),
    // 1Password service-account tokens and account secret keys.
    prefixed(
        "onepassword_token",
        r"(?-u:\b)ops_eyJ[A-Za-z0-9+/_-]{100,}={0,3}",
        &["ops_eyj"],
        4096,
        random_token,
    ),
    prefixed(
        "onepassword_token",
        r"(?-u:\b)A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}(?-u:\b)",
        &["a3-"],
        64,
        random_token,
    ),
    // Other widely used SaaS tokens with documented prefixes.
    prefixed(
        "huggingface_token",
        r"(?-u:\b)(?:hf_|api_org_)[A-Za-z]{34}(?-u:\b)",
        &["hf_", "api_org_"],
        64,
        random_token,
    ),
    prefixed(
        "npm_token",
        r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)",
        &["npm_"],
        64,
        crc32_token,
    ),
    secret(
        "pypi_token",
        r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
        &["pypi-ageichlwas5vcmc"],
        512,
        random_token,
    ),
    prefixed(
        "sendgrid_key",
        r"(?-u:\b)SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?-u:\b)",
        &["sg."],
        96,
        random_token,
    ),
    prefixed(
        "mailgun_key",
        r"(?-u:\b)key-[0-9a-f]{32}(?-u:\b)",
        &["key-"],
        64,
        random_token,
    ),
    prefixed(
        "digitalocean_token",
        r"(?-u:\b)do[opr]_v1_[a-f0-9]{64}(?-u:\b)",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        96,
        random_token,
    ),
    prefixed(
        "shopify_token",
        r"(?-u:\b)shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?-u:\b)",
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        64,
        random_token,
    ),
    prefixed(
        "vault_token",
        r"(?-u:\b)hv[sb]\.[A-Za-z0-9_-]{90,}",
        &["hvs.", "hvb."],
        512,
        random_token,
    ),
    prefixed(
        "databricks_token",
        r"(?-u:\b)dapi[a-f0-9]{32}(?:-[0-9]+)?(?-u:\b)",
        &["dapi"],
        64,
        random_token,
    ),
    prefixed(
        "atlassian_token",
        r"(?-u:\b)ATATT3[A-Za-z0-9_=-]{150,}",
        &["atatt3"],
        512,
        random_token,
    ),
    prefixed(
        "notion_token",
        r"(?-u:\b)ntn_[0-9]{11}[A-Za-z0-9]{35}(?-u:\b)",
        &["ntn_"],
        64,
        random_token,
    ),
    prefixed(
        "sourcegraph_token",
        r"(?-u:\b)sgp_(?:(?:[a-fA-F0-9]{16}_)?(?:local_)?[a-fA-F0-9]{40}|[A-Za-z0-9]{64})(?-u:\b)",
        &["sgp_"],
        96,
        random_token,
    ),
    secret(
        "sourcegraph_token",
        r#"(?i)sourcegraph[a-z0-9_ .-]{0,20}["']?\s{0,4}[:=]\s{0,4}["']?(?P<s>[a-f0-9]{40})(?-u:\b)"#,
        &["sourcegraph"],
        96,
        random_token,
    ),
    prefixed(
        "octopus_deploy_key",
        r"(?-u:\b)API-[A-Z0-9]{26}(?-u:\b)",
        &["api-"],
        48,
        random_token,
    ),
    prefixed(
        "intra42_secret",
        r"(?-u:\b)s-s4t2(?:ud|af)-[a-f0-9]{64}(?-u:\b)",
        &["s-s4t2"],
        96,
        random_token,
    ),
    prefixed(
        "facebook_token",
        r"(?-u:\b)EAA[A-Za-z0-9]{90,}",
        &["eaa"],
        1024,
        random_token,
    ),
    secret(
        "facebook_token",
        r"(?-u:\b)[0-9]{15,16}(?:\||%7[Cc])(?P<s>[A-Za-z0-9_-]{27})(?-u:\b)",
        &["|", "%7c"],
        64,
        random_token,
    ),
    secret(
        "telegram_bot_token",
        r"(?-u:\b)[0-9]{8,10}:AA[A-Za-z0-9_-]{32,33}(?-u:\b)",
        &[":aa"],
        64,
        random_token,
    ),
    secret(
        "age_secret_key",
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        &["age-secret-key-1"],
        96,
        random_token,
    ),
    prefixed(
        "linear_api_key",
        r"(?-u:\b)lin_api_[A-Za-z0-9]{40}(?-u:\b)",
        &["lin_api_"],
        64,
        random_token,
    ),
    prefixed(
        "postman_api_key",
        r"(?-u:\b)PMAK-[a-f0-9]{24}-[a-f0-9]{34}(?-u:\b)",
        &["pmak-"],
        80,
        random_token,
    ),
    prefixed(
        "doppler_token",
        r"(?-u:\b)dp\.(?:pt|st(?:\.[a-z0-9_-]{2,35})?|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}(?-u:\b)",
        &[
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit.",
        ],
        80,
        random_token,
    ),
    prefixed(
        "grafana_token",
        r"(?-u:\b)glc_[A-Za-z0-9+/]{32,400}={0,2}",
        &["glc_"],
        512,
        random_token,
    ),
    prefixed(
        "grafana_token",
        r"(?-u:\b)glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?-u:\b)",
        &["glsa_"],
        64,
        random_token,
    ),
    prefixed(
        "perplexity_api_key",
        r"(?-u:\b)pplx-[A-Za-z0-9]{48}(?-u:\b)",
        &["pplx-"],
        64,
        random_token,
    ),
    prefixed(
        "groq_api_key",
        r"(?-u:\b)gsk_[A-Za-z0-9]{52}(?-u:\b)",
        &["gsk_"],
        64,
        random_token,
    ),
    prefixed(
        "square_token",
        r"(?-u:\b)sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}(?-u:\b)",
        &["sq0atp-", "sq0csp-"],
        64,
        random_token,
    ),
    // More providers with documented prefixes: New Relic user and ingest
    // keys, PostHog project and personal keys, Docker Hub personal access
    // tokens, Google OAuth refresh tokens, OTP enrolment secrets.
    prefixed(
        "newrelic_key",
        r"(?-u:\b)NR(?:AK|II|AA|JS)-[A-Za-z0-9]{19,32}(?-u:\b)",
        &["nrak-", "nrii-", "nraa-", "nrjs-"],
        48,
        random_token,
    ),
    prefixed(
        "posthog_key",
        r"(?-u:\b)ph[cx]_[A-Za-z0-9_]{39,43}(?-u:\b)",
        &["phc_", "phx_"],
        64,
        random_token,
    ),
    prefixed(
        "docker_token",
        r"(?-u:\b)dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,32}(?-u:\b)",
        &["dckr_pat_", "dckr_oat_"],
        64,
        random_token,
    ),
    prefixed(
        "gcp_refresh_token",
        r"(?-u:\b)1//0[A-Za-z0-9_-]{40,}",
        &["1//0"],
        512,
        random_token,
    ),
    secret(
        "otp_secret",
        r"(?i)otpauth://[th]otp/[^\s?]{0,200}\?(?:[^\s#]{0,200}&)?secret=(?P<s>[A-Z2-7]{16,128})",
        &["otpauth://"],
        512,
        random_token,
    ),
    // Salesforce session and OAuth access tokens: the 15-character org id
    // (`00D…`), `!`, the session key.
    prefixed(
        "salesforce_token",
        r"(?-u:\b)00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,120}(?-u:\b)",
        &["00d"],
        160,
        random_token,
    ),
    // Grafana API keys of the first kind: base64 of a JSON object with the
    // key (`k`), its name (`n`) and the org id.
    prefixed(
        "grafana_token",
        r"(?-u:\b)eyJrIjoi[A-Za-z0-9+/_-]{40,}={0,2}",
        &["eyjrijoi"],
        512,
        grafana_key,
    ),
    // Cloudflare Origin CA keys.
    prefixed(
        "cloudflare_key",
        r"(?-u:\b)v1\.0-[a-f0-9]{24}-[a-f0-9]{146}(?-u:\b)",
        &["v1.0-"],
        200,
        random_token,
    ),
    // Password hashes (crackable offline): bcrypt, SHA-crypt, MD5-crypt,
    // Argon2.
    secret(
        "password_hash",
        r"\$2[abxy]\$[0-9]{2}\$[./A-Za-z0-9]{53}(?-u:\b)",
        &["$2a$", "$2b$", "$2x$", "$2y$"],
        64,
        random_token,
    ),
    secret(
        "password_hash",
        r"\$(?:1|5|6|8|9|apr1)\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}",
        &["$1$", "$5$", "$6$", "$8$", "$9$", "$apr1$"],
        160,
        random_token,
    ),
    secret(
        "password_hash",
        r"\$argon2(?:id|i|d)\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]{8,}\$[A-Za-z0-9+/]{16,}",
        &["$argon2"],
        256,
        random_token,
    ),
    // More password hashes: yescrypt and scrypt (current `/etc/shadow`),
    // LDAP `userPassword` schemes (`{SSHA}…`), Django's PBKDF2, and NTLM
    // hashes in pwdump lines (`user:RID:LM:NT:::`).
    context(
        "password_hash",
        r"\$y\$[./A-Za-z0-9]{1,64}\$(?:[./A-Za-z0-9]{1,86}\$)?[./A-Za-z0-9]{43}(?-u:\b)",
        &["$y$"],
        256,
        random_token,
    ),
    context(
        "password_hash",
        r"(?i)\{s?sha(?:256|384|512)?\}[A-Za-z0-9+/]{20,}={0,2}",
        &["{ssha", "{sha"],
        160,
        random_token,
    ),
    context(
        "password_hash",
        r"pbkdf2_sha(?:256|1)\$[0-9]{4,7}\$[A-Za-z0-9./+]{4,64}\$[A-Za-z0-9+/=]{32,}",
        &["pbkdf2_sha"],
        200,
        random_token,
    ),
    context(
        "password_hash",
        r"(?:^|[\s:])[^\s:]+:[0-9]{1,10}:[0-9a-fA-F]{32}:(?P<s>[0-9a-fA-F]{32}):::",
        &[":::"],
        160,
        random_token,
    ),
    // OTP enrolment seeds named as such (`TOTP secret: JBSW Y3DP …`,
    // `2FA backup seed: …`), base32, possibly in groups of four.
    from_keyword(context(
        "otp_secret",
        r#"(?i)(?:otp|2fa|mfa)[a-z0-9 _.-]{0,24}?(?:seed|secret|key)s?["']?[ \t]*(?:[:=]|=>|is)?[ \t]*["']?(?P<s>[a-z2-7]{4}(?:[ -]?[a-z2-7]{4}){3,15})(?-u:\b)"#,
        &["otp", "2fa", "mfa"],
        160,
        otp_seed,
    )),
    // Private keys stored base64-encoded (Kubernetes secrets, environment
    // variables): base64 of "-----BEGIN".
    prefixed(
        "private_key",
        r"(?-u:\b)LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}",
        &["ls0tls1crudjti"],
        16 << 10,
        pem_base64,
    ),
    // More prefixed provider tokens (Nosey Parker and Kingfisher name these
    // kinds): Twitch stream keys, Tavily, Dependency-Track, Jina, NuGet,
    // New Relic license keys, Mapbox secret tokens, Azure DevOps PATs,
    // AppSync, crates.io, Adafruit IO.
    prefixed(
        "twitch_stream_key",
        r"(?-u:\b)live_[0-9]{6,12}_[A-Za-z0-9]{30}(?-u:\b)",
        &["live_"],
        64,
        random_token,
    ),
    prefixed(
        "provider_token",
        r"(?-u:\b)(?:tvly-(?:dev-)?[A-Za-z0-9]{32}|odt_[A-Za-z0-9]{32,40}|jina_[a-f0-9]{32}[A-Za-z0-9_-]{28}|oy2[a-z0-9]{43}|da2-[a-z0-9]{26}|cio[A-Za-z0-9]{32}|aio_[A-Za-z0-9]{28})(?-u:\b)",
        &["tvly-", "odt_", "jina_", "oy2", "da2-", "cio", "aio_"],
        96,
        random_token,
    ),
    // More prefixed provider tokens at their documented shapes: Supabase,
    // Buildkite, Replicate, Brevo, Contentful, Figma, HubSpot, xAI,
    // Alibaba Cloud, Typeform, Ubidots, EasyPost, Frame.io, Ionic, MongoDB
    // Atlas, Flexport, Fleetbase, Netlify, Fly.io, Prefect, ReadMe, Pulumi,
    // PlanetScale, Sentry, Heroku, Pinecone, Shippo, Pagar.me,
    // Bitbucket, Scalingo, Duffel, RubyGems, CircleCI, JFrog, OpenRouter,
    // LangSmith, MailerSend, Terraform Cloud, NVIDIA, Tailscale,
    // SonarQube, Voiceflow, Square.
    secret(
        "provider_token",
        r"(?-u:\b)(?:sbp_[A-Za-z0-9]{40}|sb_secret_[A-Za-z0-9_-]{31,64}|bkua_[A-Za-z0-9]{40}|r8_[A-Za-z0-9]{37}|xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}|xsmtpsib-[a-f0-9]{64}-[A-Za-z0-9]{16}|CFPAT-[A-Za-z0-9_-]{43,64}|figd_[A-Za-z0-9_-]{40,64}|pat-(?:na|eu|ap)[0-9]-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}|pat-(?:eu|ap)[0-9]-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}|xai-[A-Za-z0-9_]{70,90}|LTAI[A-Za-z0-9]{12,24}|tfp_[A-Za-z0-9_.-]{40,64}|BBFF-[A-Za-z0-9]{30}|EZ[AT]K[A-Za-z0-9]{54}|EZTK[A-Za-z0-9]{54}|fio-u-[A-Za-z0-9_=-]{64}|ion_[A-Za-z0-9]{42}|mdb_sa_sk_[A-Za-z0-9_-]{40}|shltm_[A-Za-z0-9]{40}|flb_live_[A-Za-z0-9]{20}|nfp_[A-Za-z0-9]{36,40}|fo1_[A-Za-z0-9_-]{43}|pnu_[A-Za-z0-9]{36}|rdme_[a-z0-9]{70}|pul-[a-f0-9]{40}|pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}|sntry[su]_[A-Za-z0-9+/=_-]{40,200}|sntryu_[A-Za-z0-9+/=_-]{40,200}|HRKU-[A-Za-z0-9_-]{30,70}|pcsk_[A-Za-z0-9_]{50,100}|shippo_(?:live|test)_[a-fA-F0-9]{40}|ak_(?:live|test)_[A-Za-z0-9]{30}|ak_test_[A-Za-z0-9]{30}|ATBB[A-Za-z0-9_=.-]{32}|tk-us-[A-Za-z0-9_-]{48}|duffel_(?:test|live)_[A-Za-z0-9_=-]{43}|rubygems_[a-f0-9]{48}|CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}|AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56}|sk-or-v1-[a-f0-9]{64}|lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}|mlsn\.[a-f0-9]{64}|[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}|nvapi-[A-Za-z0-9_-]{64}|tskey-[a-z]{3,12}-[A-Za-z0-9]{6,}-[A-Za-z0-9]{4,}|sq[pua]_[a-f0-9]{40}|VF\.(?:DM|WS)\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{16}|EAAA[A-Za-z0-9_-]{60})(?:$|[^A-Za-z0-9_])",
        &[
            "sbp_",
            "sb_secret_",
            "bkua_",
            "r8_",
            "xkeysib-",
            "xsmtpsib-",
            "cfpat-",
            "figd_",
            "pat-na",
            "pat-eu",
            "xai-",
            "ltai",
            "tfp_",
            "bbff-",
            "ezak",
            "eztk",
            "fio-u-",
            "ion_",
            "mdb_sa_sk_",
            "shltm_",
            "flb_live_",
            "nfp_",
            "fo1_",
            "pnu_",
            "rdme_",
            "pul-",
            "pscale_",
            "sntrys_",
            "sntryu_",
            "hrku-",
            "pcsk_",
            "shippo_",
            "ak_live_",
            "ak_test_",
            "atbb",
            "tk-us-",
            "duffel_",
            "rubygems_",
            "ccipat_",
            "akcp",
            "cmvmdgtu",
            "sk-or-v1-",
            "lsv2_",
            "mlsn.",
            ".atlasv1.",
            "nvapi-",
            "tskey-",
            "sqp_",
            "squ_",
            "sqa_",
            "vf.dm.",
            "vf.ws.",
            "eaaa",
        ],
        256,
        random_token,
    ),
    secret(
        "newrelic_key",
        r"(?-u:\b)[A-Za-z0-9]{36}NRAL(?-u:\b)",
        &["nral"],
        48,
        random_token,
    ),
    prefixed(
        "mapbox_token",
        r"(?-u:\b)sk\.eyJ1Ijoi[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}",
        &["sk.eyj1ijoi"],
        512,
        random_token,
    ),
    secret(
        "azure_devops_pat",
        r"(?-u:\b)[A-Za-z0-9]{52}JQQJ[A-Za-z0-9]{20}AZDO[A-Za-z0-9]{4}(?-u:\b)",
        &["azdo"],
        96,
        random_token,
    ),
    secret(
        "teams_webhook",
        r"(?i)https://[a-z0-9.-]*\.office(?:365)?\.com/webhook(?:b2)?/[0-9a-f-]{36}@[0-9a-f-]{36}/IncomingWebhook/(?P<s>[0-9a-f]{32}/[0-9a-f-]{36})",
        &["/incomingwebhook/"],
        300,
        random_token,
    ),
    // More providers (Nosey Parker's and Kingfisher's rule files document
    // these formats): Telegram bot tokens named as such, Discord, Tines
    // and Zapier webhook URLs (the URL is the credential), Zoho OAuth
    // tokens, MaxMind license keys, Nightfall, ElevenLabs, ClickUp and
    // Sourcegraph `slk_` keys, TrueNAS API keys in a JSON-RPC login,
    // ThingsBoard device tokens, SonarQube login tokens. Keywords begin
    // with punctuation where the format allows it: a keyword made of
    // letters and digits is met by chance inside base64 blobs, and every
    // one grows the keyword automaton's states there.
    context(
        "telegram_bot_token",
        r"(?i)(?:telegram|tgram://)[^\n]{0,16}?(?-u:\b)(?P<s>[0-9]{8,10}:[A-Za-z0-9_-]{35})(?-u:\b)",
        &["telegram", "tgram://"],
        96,
        random_token,
    ),
    context(
        "provider_token",
        r"(?i)discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/(?P<s>[A-Za-z0-9_-]{60,68})",
        &["/api/webhooks/"],
        160,
        random_token,
    ),
    context(
        "provider_token",
        r"(?i)\.tines\.com/webhook/[a-z0-9]{32}/(?P<s>[a-z0-9]{32})",
        &[".tines.com/webhook/"],
        128,
        random_token,
    ),
    context(
        "provider_token",
        r"hooks\.zapier\.com/hooks/catch/(?P<s>[A-Za-z0-9/]{8,40}[A-Za-z0-9])",
        &["/hooks/catch/"],
        96,
        random_token,
    ),
    at_word_start(context(
        "provider_token",
        r"(?-u:\b)(?:1000\.[a-f0-9]{32}\.[a-f0-9]{32}|NF-[A-Za-z0-9]{32}|sk_[a-f0-9]{48}|pk_[0-9]{7,8}_[0-9A-Z]{32}|slk_[a-f0-9]{64})(?-u:\b)",
        &["1000.", "nf-", "sk_", "pk_", "slk_"],
        96,
        random_token,
    )),
    context(
        "provider_token",
        r"(?-u:\b)[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk(?-u:\b)",
        &["_mmk"],
        48,
        random_token,
    ),
    context(
        "provider_token",
        r#""params"\s*:\s*\[\s*"(?P<s>[0-9]{1,6}-[A-Za-z0-9]{64})"\s*\]"#,
        &["\"params\""],
        128,
        random_token,
    ),
    context(
        "provider_token",
        r#"(?i)(?:thingsboard\.cloud/api/v1/|"provisionDevice(?:Key|Secret)"\s*:\s*")(?P<s>[a-z0-9]{20})(?:[^a-z0-9]|$)"#,
        &[".cloud/api/v1/", "\"provisiondevice"],
        96,
        random_token,
    ),
    context(
        "provider_token",
        r"(?i)sonar[a-z._-]{0,5}login[^\n]{0,5}?(?-u:\b)(?P<s>[a-f0-9]{40})(?-u:\b)",
        &["sonar"],
        96,
        random_token,
    ),
    // Credentials passed positionally to well-known constructors:
    // .NET `NetworkCredential("user", "pass")`, Python requests'
    // `auth=("user", "pass")` and `HTTPBasicAuth("user", "pass")`.
    context(
        "generic_password",
        r#"(?i)(?:networkcredential|httpbasicauth|httpdigestauth|basicauth|pscredential|directoryentry\s*\(\s*["'][^"'\n]+["']\s*,)\s*\(?\s*["'][^"'\n]+["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &[
            "networkcredential",
            "httpbasicauth",
            "httpdigestauth",
            "basicauth",
            "pscredential",
            "directoryentry",
        ],
        300,
        quoted_password,
    ),
    prefixed(
        "generic_password",
        r#"(?-u:\b)auth\s*=\s*\(\s*["'][^"'\n]+["']\s*,\s*["'](?P<s>[^"'\n]{1,128})["']\s*\)"#,
        &["auth"],
        300,
        quoted_password,
    ),
    // The password argument of well-known calls: JDBC's
    // `DriverManager.getConnection(url, "user", "pass")`, Go's
    // `smtp.PlainAuth("", "user", "pass", host)`, `login("user", "pass")`
    // (smtplib, ftplib, imaplib), `new Sequelize("db", "user", "pass")`,
    // PowerShell's `ConvertTo-SecureString "pass" -AsPlainText`.
    context(
        "generic_password",
        r#"(?i)getconnection\s*\(\s*[^,()\n]+,\s*["'][^"'\n]*["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &["getconnection"],
        400,
        quoted_password,
    ),
    context(
        "generic_password",
        r#"(?i)plainauth\s*\(\s*["'][^"'\n]*["']\s*,\s*["'][^"'\n]*["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &["auth"],
        400,
        quoted_password,
    ),
    context(
        "generic_password",
        r#"(?i)\.login\s*\(\s*["'][^"'\n]+["']\s*,\s*["'](?P<s>[^"'\n]+)["']\s*\)"#,
        &[".login"],
        300,
        quoted_password,
    ),
    context(
        "generic_password",
        r#"(?i)sequelize\s*\(\s*["'][^"'\n]+["']\s*,\s*["'][^"'\n]+["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &["sequelize"],
        400,
        quoted_password,
    ),
    context(
        "generic_password",
        r#"(?i)convertto-securestring\s+(?:-string\s+)?["'](?P<s>[^"'\n]+)["']\s+-asplaintext"#,
        &["convertto-securestring"],
        300,
        quoted_password,
    ),
    // More constructors that take a user and a password: Apache
    // HttpClient's `UsernamePasswordCredentials`, Java's
    // `PasswordAuthentication`, JCR's `SimpleCredentials`, the MongoDB
    // driver's `createCredential(user, db, password)`.
    paired(
        "generic_password",
        r#"(?i)(?:usernamepasswordcredentials|passwordauthentication|usernamepasswordauthenticationtoken|simplecredentials)\s*\(\s*["'][^"'\n]+["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &["password", "credential"],
        300,
        quoted_password,
    ),
    paired(
        "generic_password",
        r#"(?i)create(?:scramsha(?:1|256)|plain)?credential\s*\(\s*["'][^"'\n]*["']\s*,\s*["'][^"'\n]*["']\s*,\s*["'](?P<s>[^"'\n]+)["']"#,
        &["credential"],
        300,
        quoted_password,
    ),
    // Go's MySQL DSN: `user:pass@tcp(host:3306)/db`.
    context(
        "url_credentials",
        r#"(?-u:\b)[A-Za-z0-9_.-]{1,64}:(?P<s>[^@\s:/'"]+)@(?:tcp|unix)\("#,
        &["@tcp(", "@unix("],
        256,
        url_password,
    ),
    // `.netrc`: `machine host login user password secret`.
    prefixed(
        "generic_password",
        r"(?-u:\b)machine\s+\S+\s+login\s+\S+\s+password\s+(?P<s>\S+)",
        &["machine"],
        400,
        cli_password,
    ),
    // Vault unseal keys (`vault operator unseal KEY`, `Unseal Key 1: KEY`).
    secret(
        "vault_token",
        r"(?i)unseal(?:\s+key\s+[0-9]{1,2}:)?\s+(?P<s>[A-Za-z0-9+/]{40,}={0,2})",
        &["unseal"],
        128,
        random_token,
    ),
    // Terraform variables named for a credential with a literal default.
    secret(
        "generic_secret",
        r#"(?i)variable\s+"[a-z0-9_-]*(?:token|secret|password|passwd|api_?key|access_?key|private_?key)[a-z0-9_-]*"\s*\{[^}]{0,200}?default\s*=\s*"(?P<s>[^"\s]{8,256})""#,
        &["variable"],
        512,
        random_token,
    ),
    // Kerberos AS-REP and TGS-REP hashes (offline-crackable).
    from_keyword(secret(
        "password_hash",
        r"\$krb5(?:asrep|tgs)\$[0-9]{1,2}\$[^\s$]{0,200}\$?[0-9a-f]{32}\$[0-9a-f]{64,}",
        &["$krb5"],
        4608,
        random_token,
    )),
    // Mailchimp API keys: 32 hex and the data centre.
    secret(
        "mailchimp_key",
        r"(?-u:\b)[0-9a-f]{32}-us[0-9]{1,2}(?-u:\b)",
        &["-us"],
        48,
        random_token,
    ),
    // Dropbox short-lived access tokens.
    prefixed(
        "dropbox_token",
        r"(?-u:\b)sl\.(?:u\.)?[A-Za-z0-9_-]{130,}",
        &["sl."],
        1500,
        random_token,
    ),
    // Credentials in URLs (database DSNs, package registries, git remotes).
    secret(
        "url_credentials",
        r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]{1,30}://[^\s:/?#@'"<>\[\]]*:(?P<s>[^\s:/?#@'"<>\[\]]+)@[a-z0-9._-]+"#,
        &["://"],
        600,
        url_password,
    ),
    // `-u user:password` on command lines (curl, wget, httpie).
    secret(
        "cli_credentials",
        r#"(?:^|\s)(?:-u|--user)(?:\s+|=)(?P<s>(?:"[^"\n]*"|'[^'\n]*'|[^\s'":]+)(?::(?:"[^"\n]*"|'[^'\n]*'|[^\s'"]*))?)"#,
        &["-u", "--user"],
        512,
        user_colon_password,
    ),
    // `-u user -p password` (docker login, mysql, sshpass-style tools),
    // `-pPASSWORD` glued to mysql's flag, `sshpass -p`, openssl `pass:`.
    secret(
        "cli_credentials",
        r#"(?:^|\s)(?:-u|--user(?:name)?)(?:\s+|=)(?:"[^"\n]*"|'[^'\n]*'|[^\s'"-][^\s'"]*)\s+(?:-p|--password)(?:\s+|=)?["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["-u", "--user"],
        512,
        cli_password,
    ),
    secret(
        "cli_credentials",
        r#"(?i)(?-u:\b)(?:mysql|mysqldump|mysqladmin|mariadb)(?-u:\b)[^\n|;&]{0,160}?\s-p["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["mysql", "mariadb"],
        256,
        cli_password,
    ),
    prefixed(
        "cli_credentials",
        r#"(?-u:\b)sshpass\s+-p\s*["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["sshpass"],
        256,
        cli_password,
    ),
    secret(
        "cli_credentials",
        r#"(?:^|\s)-pass(?:in|out)?\s+["']?pass:(?P<s>[^\s"']+)"#,
        &["-pass"],
        256,
        cli_password,
    ),
    // More command lines that take a password: `htpasswd -b FILE USER
    // PASS`, Redis (`requirepass`, `masterauth`, `redis-cli -a`), Java's
    // keytool and jarsigner (`-storepass`, `-keypass`), SQL Server tools
    // (`sqlcmd … -P`), OpenLDAP tools (`-w`), Samba (`-U user%pass`),
    // `chpasswd`, `echo PASS | docker login --password-stdin`,
    // `ssh-keygen -N`, `zip -P`, `7z -p`.
    context(
        "cli_credentials",
        r#"htpasswd\s+(?:-[a-zA-Z]+\s+)*-[a-zA-Z]*b[a-zA-Z]*\s+(?:-[a-zA-Z]+\s+)*(?:\S+\s+)?[^\s-]\S*\s+["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["htpasswd"],
        400,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?i)(?:^|\s|--)(?:requirepass|masterauth)\s+["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["requirepass", "auth"],
        200,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?i)(?:^|\s)-(?:src|dest|new)?(?:store|key)pass\s+["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["storepass", "keypass"],
        200,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"redis-cli(?-u:\b)[^\n|;&]*?\s(?:-a|--pass)\s+["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["redis-cli"],
        300,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?i:sqlcmd)(?-u:\b)[^\n|;&]*?\s-P\s*["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["sqlcmd"],
        300,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?i:ldap[a-z]*)(?-u:\b)[^\n|;&]*?\s-w\s+["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["ldap"],
        300,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?:^|\s)(?:-U|--user(?:name)?)(?:\s+|=)["']?[^\s%"'/]+%(?P<s>[^\s"']+)"#,
        &["-u", "--user"],
        256,
        cli_password,
    ),
    paired(
        "cli_credentials",
        r#"echo\s+(?:-[en]\s+)?["']?[A-Za-z0-9_.-]+:(?P<s>[^\s"':]+)["']?\s*\|\s*(?:sudo\s+)?chpasswd"#,
        &["passwd"],
        256,
        cli_password,
    ),
    paired(
        "cli_credentials",
        r#"echo\s+(?:-n\s+)?["']?(?P<s>[^\s"'$|]+)["']?\s*\|\s*[^\n|]*--password-stdin"#,
        &["password"],
        200,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"ssh-keygen(?-u:\b)[^\n|;&]*?\s-N\s+["'](?P<s>[^"'\n]+)["']"#,
        &["ssh-keygen"],
        300,
        cli_password,
    ),
    context(
        "cli_credentials",
        r#"(?:(?i:zip)(?-u:\b)[^\n|;&]*?\s-P\s+|(?i:7za?)(?-u:\b)[^\n|;&]*?\s-p)["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &[" -p"],
        256,
        cli_password,
    ),
    // Keyword-plus-value: ADO/ODBC connection strings, then generic
    // assignments whose value looks generated, then passwords.
    generic(
        "connection_string_password",
        r#"(?i)(?:^|[;"'\s])(?:password|pwd)\s*=\s*(?P<s>[^;'"\s]{3,128})\s*;"#,
        &["password", "pwd"],
        160,
        connection_password,
    ),
    // SQL: `IDENTIFIED BY 'x'` (MySQL, Oracle), `WITH PASSWORD 'x'` and
    // `PASSWORD 'x'` (PostgreSQL, SQL Server logins).
    at_word_start(generic(
        "generic_password",
        r#"(?i)(?-u:\b)identified\s+(?:with\s+[a-z0-9_]+\s+)?by(?:\s+password)?\s+N?["'](?P<s>[^"'\n]{1,128})["']"#,
        &["identified"],
        256,
        quoted_password,
    )),
    // Oracle takes a password of letters alone unquoted after a user
    // (`CREATE USER scott IDENTIFIED BY tiger;`, `CONNECT TO x
    // IDENTIFIED BY y USING …`).
    paired(
        "generic_password",
        r#"(?i)(?:user|connect\s+to|role)\s+[A-Za-z0-9_$"]+\s+identified\s+by\s+(?P<s>[A-Za-z][A-Za-z0-9_#$]{3,29})(?:\s|;|$)"#,
        &["identified"],
        160,
        cli_password,
    ),
    // Oracle and MySQL also take the password unquoted.
    at_word_start(generic(
        "generic_password",
        r#"(?i)(?-u:\b)identified\s+by\s+(?P<s>[A-Za-z0-9_#$!@%^&*.-]{4,64})"#,
        &["identified"],
        96,
        bare_password,
    )),
    // XML elements and .NET appSettings entries named for a secret.
    generic(
        "generic_password",
        r#"(?i)<[a-z0-9_:.-]*(?:password|passwd|pwd|passphrase)[a-z0-9_.-]*>(?P<s>[^<\s]{1,128})</"#,
        &["password", "passwd", "pwd", "passphrase"],
        200,
        quoted_password,
    ),
    generic(
        "generic_secret",
        r#"(?i)<[a-z0-9_:.-]*(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[a-z0-9_.-]*>(?P<s>[^<\s]{12,512})</"#,
        &["secret", "token", "key"],
        640,
        assigned_secret,
    ),
    generic(
        "generic_password",
        r#"(?i)key\s*=\s*["'][^"'\n]{0,60}(?:password|passwd|pwd|secret|token|api[_.-]?key)[^"'\n]{0,60}["']\s+value\s*=\s*["'](?P<s>[^"'\n]{1,256})["']"#,
        &["password", "passwd", "pwd", "secret", "token", "key"],
        400,
        quoted_password,
    ),
    // Generic assignments whose value looks generated: `=`, `:`, `=>`,
    // comparisons with a literal, and a bare space after a keyword
    // (`netrc`-like and `NAME TOKEN` lines).
    generic(
        "generic_secret",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:api[_.-]?key|apikey|access[_.-]?key|secret[_.-]?key|private[_.-]?key|client[_.-]?secret|secret|token|auth[_.-]?key|credential|key|salt|[_.-]pat)s?(?:_?[0-9]{1,2})?(?:\\?["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>|==|!=|===|!==)[ \t]{0,32}@?(?:\\?["'`])?(?P<s>[A-Za-z0-9_./+=~@!#%^&*$(){}\[\]|-]{8,})"#,
        &[
            "key",
            "secret",
            "token",
            "credential",
            "salt",
            "_pat",
            "-pat",
            ".pat",
        ],
        640,
        assigned_secret,
    ),
    generic(
        "generic_secret",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:api[_.-]?key|apikey|secret|token|access|private|credential|key|salt)s?[ \t]{1,4}["'`]?(?P<s>[A-Za-z0-9_./+=~-]{16,})"#,
        &[
            "key",
            "secret",
            "token",
            "credential",
            "salt",
            "access",
            "private",
        ],
        640,
        assigned_secret,
    ),
    // A credential keyword and its value with any separator: words between
    // (`provider SECRET key VALUE`), a hyphen or dot (`provider-TOKEN-…`),
    // or a line break (`API key:` and the value on the next line).
    generic(
        "generic_secret",
        r#"(?i)(?:api[_.-]?key|apikey|secret|token|tkn|access|private|credential|key)s?(?:[ \t_.-]{1,3}(?:api[_.-]?key|key|token|secret|access|private)){0,3}(?:[ \t]{0,8}(?:=|:|:=|=>)[ \t]{0,8}|[ \t]{1,8}|[ \t]{0,8}:?\r?\n[ \t]{0,8}|[-_.])["'`]?(?P<s>[A-Za-z0-9][A-Za-z0-9_+/=.~-]{7,511})"#,
        &[
            "key",
            "secret",
            "token",
            "tkn",
            "access",
            "private",
            "credential",
        ],
        640,
        keyword_token,
    ),
    // Command-line options named for a token (`--softlayer-api-key X`,
    // `--tls-bootstrap-token X`).
    generic(
        "cli_credentials",
        r#"(?i)(?:^|\s)--?[a-z0-9-]{0,40}(?:api-?key|token|secret|access-key|auth-key|private-key)(?:=|\s+)["']?(?P<s>[A-Za-z0-9][A-Za-z0-9_+/=.~-]{7,511})"#,
        &["key", "token", "secret"],
        640,
        keyword_token,
    ),
    // The literal compared with a secret-named variable, on its left.
    generic(
        "generic_secret",
        r#"(?i)["'`](?P<s>[^"'`\s]{6,256})["'`][ \t]{0,32}(?:==|!=|===|!==)[ \t]{0,32}[a-z0-9_.]*(?:password|passwd|pwd|secret|token|api[_.]?key|private[_.]?key)"#,
        &["password", "passwd", "pwd", "secret", "token", "key"],
        400,
        quoted_password,
    ),
    // Secrets chosen by people: a quoted literal with digits or symbols
    // after a credential-named identifier (`apikey: "m{h}o)p$e..."`,
    // `if (api_key == "...")`), the identifier possibly indexed or
    // suffixed (`apikey_myservice`, `secret[]`).
    generic(
        "generic_secret",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:secret|api[_.-]?key|apikey|token|private[_.-]?key|access[_.-]?key|auth[_.-]?key|credential)[a-z0-9_.-]{0,24}(?:\[[0-9]*\])?(?:["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>|==|!=|===|!==)[ \t]{0,32}(?:N|@|[bru]{1,2})?["'`](?P<s>[^"'`\s]{8,128})["'`]"#,
        &["secret", "key", "token", "credential"],
        200,
        quoted_secret,
    ),
    // Passwords: a quoted literal after a password-named identifier and
    // any operator or a space (`password: "x"`, `PASSWORD 'x'`,
    // `password == "x"`), then unquoted values after `=`, `:` and `=>`.
    generic(
        "generic_password",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|passcode|[_.-]pass)(?:[a-z0-9_]{0,24}|s?(?:_?[0-9]{1,2})?)(?:\[[0-9]*\])?(?:["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>|==|!=|===|!==|[ \t])[ \t]{0,32}(?:N|@|[bru]{1,2})?["'`](?P<s>[^"'`\n]+)["'`]"#,
        PASSWORD_NAMED,
        200,
        quoted_password,
    ),
    generic(
        "generic_password",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|passcode|[_.-]pass)s?(?:_?[0-9]{1,2})?(?:["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>)[ \t]{0,32}(?P<s>[^\s"'`,;]{4,128})"#,
        PASSWORD_NAMED,
        200,
        assigned_password,
    ),
    // Quoted literals the rules above do not take: one holding another
    // kind of quote (`'`123QWERasdf'`), one in escaped quotes inside
    // another literal (`$password = \"goodspec\";`), one after a name
    // ending in `pw` (`cloudant_pw = "…"`).
    paired(
        "generic_password",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|passcode|[_.-]pass|[_.-]pw)[a-z0-9_]{0,24}(?:\[[0-9]*\])?(?:\\?["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>|==|!=|===|!==)[ \t]{0,32}(?:N|@|[bru]{1,2})?(?P<s>\\?"[^"\n]{1,128}"|\\?'[^'\n]{1,128}'|`[^`\n]{1,128}`)"#,
        password_named!("_pw", "-pw", ".pw"),
        240,
        requoted,
    ),
    paired(
        "generic_secret",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*(?:secret|api[_.-]?key|apikey|token|private[_.-]?key|access[_.-]?key|auth[_.-]?key|credential)[a-z0-9_.-]{0,24}(?:\[[0-9]*\])?(?:\\?["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>|==|!=|===|!==)[ \t]{0,32}(?:N|@|[bru]{1,2})?(?P<s>\\?"[^"\n]{1,256}"|\\?'[^'\n]{1,256}'|`[^`\n]{1,256}`)"#,
        &["secret", "key", "token", "credential"],
        360,
        requoted,
    ),
    // A connection string's password as its last member
    // (`…;User Id=hr;Pwd=x"`).
    paired(
        "connection_string_password",
        r#"(?i);[ \t]*(?:password|pwd)[ \t]*=[ \t]*(?P<s>[^;'"\s]{3,})[ \t]*(?:["'\r\n]|$)"#,
        &["password", "pwd"],
        160,
        url_password,
    ),
    // A name written apart from its value: Kubernetes, Compose and ECS
    // `env` entries (`- name: DB_PASSWORD` / `value: …`, `{"name":
    // "API_KEY", "value": "…"}`), XML properties (`<property
    // name="connection.password" value="…"/>`, `<entry
    // key="db.password">…</entry>`).
    paired(
        "generic_secret",
        r#"(?i)(?-u:\b)name["']?[ \t]*[:=][ \t]*["']?[a-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|auth[_.-]?key|credential|salt)[a-z0-9_.-]*["']?[ \t]*,?[ \t]*(?:\r?\n[ \t]*)?["']?value["']?[ \t]*[:=][ \t]*["']?(?P<s>[^\s"',}<>]+)"#,
        NAMED_SECRET,
        400,
        paired_value,
    ),
    paired(
        "generic_secret",
        r#"(?i)(?-u:\b)(?:name|key)[ \t]*=[ \t]*["'][a-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|auth[_.-]?key|credential|salt)[a-z0-9_.-]*["'][^<>\n]{0,40}>(?P<s>[^<\s]+)</"#,
        NAMED_SECRET,
        400,
        paired_value,
    ),
    // A quoted name and a quoted value as two arguments: PHP's
    // `define('DB_PASSWORD', '…')`, `setProperty("db.password", "…")`,
    // `os.getenv("API_KEY", "…")` (a default written in the code),
    // Gradle's `buildConfigField("String", "API_KEY", "\"…\"")` (a Java
    // string literal inside the Groovy or Kotlin one).
    paired(
        "generic_secret",
        r#"(?i)["'][a-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|auth[_.-]?key|credential|salt)[a-z0-9_.-]*["'][ \t]*,[ \t]*["'](?:\\?")?(?P<s>[^"'\n\\]+)(?:\\?")?["']"#,
        NAMED_SECRET,
        300,
        paired_literal,
    ),
    // A literal given to a setter or builder named for a password or a
    // secret (`setPassword("…")`, `.password("…")`, SQL `PASSWORD('…')`).
    paired(
        "generic_password",
        r#"(?i)(?-u:\b)[a-z0-9_]*(?:password|passwd|pwd|passphrase|secret|api_?key|token)[ \t]*\([ \t]*(?:N|@|[bru]{1,2})?["'](?P<s>[^"'\n]+)["'][ \t]*\)"#,
        &[
            "password",
            "passwd",
            "pwd",
            "passphrase",
            "secret",
            "key",
            "token",
        ],
        200,
        setter_value,
    ),
    // Salts and peppers: shorter than tokens (`PASSWORD_SALT = "f3a9c1"`).
    paired(
        "generic_secret",
        r#"(?i)(?-u:\b)[a-z0-9_.-]*salt[a-z0-9_.-]{0,24}(?:["'`]\]?)?[ \t]{0,32}(?:=|:|:=|=>)[ \t]{0,32}(?:[bru]{1,2})?["'`](?P<s>[^"'`\s]{6,})["'`]"#,
        &["salt"],
        200,
        quoted_salt,
    ),
    // Basic credentials stored base64-encoded (`"auth": "…"` in Docker's
    // `config.json`, `_auth=` in `.npmrc`): they decode to `user:password`.
    context(
        "generic_password",
        r#"(?i)["']?_?auth["']?[ \t]*[:=][ \t]*["']?(?P<s>[A-Za-z0-9+/]{8,}={0,2})"#,
        &["auth"],
        300,
        basic_pair,
    ),
    // `pass` alone as a key (`auth: { user: …, pass: '…' }`, `"pass":
    // "…"`, `$pass = '…'`).
    paired(
        "generic_password",
        r#"(?i)(?:^|[^a-z0-9_.-])["']?pass["']?(?:[ \t]*(?:=|=>)|:)[ \t]*(?:[bru]{1,2})?["'`](?P<s>[^"'`\n]+)["'`]"#,
        &["pass\"", "pass'", "pass:", "pass=", "pass ="],
        200,
        quoted_password,
    ),
    // Command-line options: `--password x`, `--db-password=x`,
    // `--passphrase 'x'`.
    generic(
        "cli_credentials",
        r#"(?i)(?:^|\s)(?:--?[a-z0-9-]*(?:password|passwd|passphrase|pwd)|--?pass)(?:=|\s+)["']?(?P<s>[^\s"'-][^\s"']*)"#,
        &["password", "passwd", "passphrase", "-pass", "pwd"],
        200,
        cli_password,
    ),
    // Prose with the short words: "the root pw for the box is t00r",
    // "Wi-Fi pass: x".
    at_word_start(paired(
        "generic_password",
        r#"(?i)(?-u:\b)pw(?:\s+(?:for|of|to|on)\s+[^\n.:;]{1,40}?)?(?:\s*[:=]|\s+(?:is|was))\s+["'`]?(?P<s>[^\s"'`]{4,})"#,
        &["pw"],
        200,
        prose_password,
    )),
    at_word_start(paired(
        "generic_password",
        r#"(?i)(?-u:\b)pass:\s+["'`]?(?P<s>[^\s"'`]{4,})"#,
        &["pass:"],
        200,
        prose_password,
    )),
    // A user and a password joined by a slash after a word that
    // introduces them (`credentials: admin / Adm1n2024`, `login
    // root/t00rPass`).
    at_word_start(paired(
        "generic_password",
        r#"(?i)(?-u:\b)(?:credentials?|creds|login)(?:\s*(?:is|are|:|=)\s*|\s+)[A-Za-z0-9_.@-]{2,64}\s*/\s*(?P<s>[^\s/"'`]{5,})"#,
        &["credential", "creds", "login"],
        200,
        slash_password,
    )),
    // Prose: "use the password Summer2024! to log in".
    at_word_start(generic(
        "generic_password",
        r#"(?i)(?-u:\b)(?:password|passphrase|passcode)\s+(?P<s>[^\s"'`]{6,64})"#,
        &["password", "passphrase", "passcode"],
        96,
        bare_password,
    )),
    // Prose: "the password is x", "password for the admin account: x".
    generic(
        "generic_password",
        r#"(?i)(?-u:\b)(?:password|passphrase|passcode|passwd|pwd)s?(?:\s+(?:for|of|to|on)\s+[^\n.:;]{1,40}?)?(?:\s*[:=]|\s+(?:(?:has|have)\s+(?:been\s+)?)?(?:is|was|will\s+be|set\s+to|changed\s+to|reset\s+to))\s+["'`]?(?P<s>[^\s"'`]{4,})"#,
        &["password", "passphrase", "passcode", "passwd", "pwd"],
        200,
        prose_password,
    ),
];

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
