#!/usr/bin/env bash
# Writes the committed seed corpus, fuzz/corpus/<target>/<name>: a few small
# real inputs per target. Regenerate with this script; do not hand-edit.
# Fields of one input are separated by the byte 0xFF (see fuzz/src/lib.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

SEP=$'\xff'
seed() { # seed <target> <name> <bytes...>: the arguments joined by 0xFF
  local target=$1 name=$2
  shift 2
  mkdir -p "corpus/$target"
  local IFS=$SEP
  printf '%s' "$*" >"corpus/$target/$name"
}
# A leading flag/mode byte, given as an octal escape.
byte() { printf "\\$1"; }

call='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"git__log","arguments":{"n":3},"_meta":{"progressToken":"p1"}}}'
init='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}'
page='{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"git__log","inputSchema":{"type":"object"}}],"nextCursor":"w1.eyJnaXQiOiJjMiJ9"}}'
error='{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad","data":null}}'
modern='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a b","arguments":{"region":"eu west","n":42},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
schema='{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer","x-mcp-header":"N"}}}'

seed strict request "$(byte 100)$call"
seed strict duplicate-key "$(byte 100)"'{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}'
seed strict deep "$(byte 003)"'{"a":[[{"b":[1,2.5e3,"\u00e9",true,null]}]]}'

seed message request "$(byte 010)$call"
seed message initialize "$(byte 010)$init"
seed message batch "$(byte 001)[$call,{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]"
seed message result "$(byte 010)$page"
seed message error "$(byte 010)$error"

seed sse stream "$(byte 002)$(byte 003)$(byte 005)$(byte 001)$(byte 040): keep-alive

event: message
id: s1-1
data: $page

data: line1
data: line2
retry: 3000

"
seed sse crlf "$(byte 041)$(byte 002)$(byte 001)$(byte 007)data: x"$'\r\n\r\n'"id: 2"$'\r'"data: y"$'\r\r'

seed modern_headers call "$(byte 007)=?base64?YSBi?=" "$modern" 2026-07-28 tools/call "a b" \
  "$schema" '{"region":"eu west","n":42}' "mcp-param-region: eu west
mcp-param-n: 42.0"
seed modern_headers encoded "$(byte 007) naïve " "$modern" 2026-07-28 tools/call "=?base64?YSBi?=" \
  "$schema" '{"region":" naïve ","n":-3}' "mcp-param-region: =?base64?IG5hw692ZSA=?="

seed cursor issued 'w1.eyJhIjoiYzEiLCJiIjoiYzIifQ'
seed cursor pairs git c2 notes 'page=3'

seed uri_template file 'file://{+dir}/{+name}.{+ext}/x' 'file:///home/u/notes.md/x'
seed uri_template notes 'notes://{id}' 'notes://42'
seed uri_template operators 'x:{#a}{/b}{.c}{;d}{?e}{&f}{g' 'x:#a/b.c;d?e&f{g'

seed federation_page tools "$(byte 010)"'{"tools":[{"name":"log","inputSchema":{"type":"object"},"x-extra":[1]},{"name":"bad name"}],"nextCursor":"c2"}'
seed federation_page resources "$(byte 012)"'{"resources":[{"uri":"file:///a","name":"a"}],"capabilities":{"tools":{},"resources":{"subscribe":true}}}'

seed trace_context w3c '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'

claims='{"iss":"$ISS","sub":"alice","aud":"$AUD","exp":4102444800,"iat":$NOW,"nbf":$NOW,"jti":"t1","roles":["analyst"],"groups":["g"],"scope":"mcp tools.read","tenant":"acme","client_id":"c1"}'
seed access_token signed "$(byte 001)"'{"alg":"EdDSA","typ":"at+jwt"}' "$claims"
seed access_token signed-dpop "$(byte 003)"'{"alg":"EdDSA","typ":"at+jwt"}' "${claims%\}},\"cnf\":{\"jkt\":\"x\"}}"
seed access_token raw "$(byte 010)Bearer eyJhbGciOiJFZERTQSJ9.e30.c2ln"
seed access_token two-credentials "$(byte 010)Bearer eyJhbGciOiJFZERTQSJ9.e30.c2ln" "" "wdn_0123456789abcdef"
seed access_token api-key "$(byte 010)Bearer wdn_AAAAAAAAAAAAAAAAAAAAAAAA"

proof_header='{"typ":"dpop+jwt","alg":"EdDSA","jwk":$JWK}'
proof_claims='{"jti":"$JTI","htm":"POST","htu":"https://warden.example.com/mcp","iat":$NOW,"ath":"$ATH"}'
seed dpop_proof signed "$(byte 001)$proof_header" "$proof_claims"
seed dpop_proof signed-url "$(byte 001)$proof_header" "${proof_claims/warden.example.com\/mcp/WARDEN.example.com:443\/a\/..\/%6dcp?q}" POST 'https://Warden.Example.com/./mcp?x=1#f'
seed dpop_proof with-nonce "$(byte 003)$proof_header" "${proof_claims%\}},\"nonce\":\"bm9uY2U\"}"
seed dpop_proof raw "$(byte 010)eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"
