# Sourced by scripts/bench-pipeline.sh and scripts/bench-instructions.sh:
# the configurations of the "bare" and the "full" Warden they compare.
# EDGE (the load generator's caps, raised), BARE (every control that
# configuration can turn off, off), FULL_LIMITS; bare_yaml and full_yaml
# print a whole configuration in front of one Streamable HTTP upstream.

# The load generator is one caller on one address that keeps its sessions:
# the per-address and per-principal edge caps are raised for it.
EDGE="listen: {max_connections_per_ip: 100000}
gateway: {max_sessions_per_principal: 100000}"

BARE="audit: {enabled: false}
limits: {rate: [], concurrency: [], loops: {enabled: false}}
guards:
  input: {schema_mode: as_declared, forbidden_chars: allow, injection: {action: off}}
  output:
    secrets: {action: off}
    pii: {action: off}
    injection: {action: off}
    upstream_errors: passthrough"

# Limits rules that match every call and never refuse: the load generator
# sends one principal's identical calls as fast as it can, which the
# default rate rule and loop detection would (rightly) cut.
FULL_LIMITS="limits:
  rate: [{id: bench, per: [principal], rate: 1000000/s, burst: 1000000}]
  concurrency: [{id: bench, per: [principal], max: 100000}]
  loops: {max_repeats: 1000000, window: 1s}"

servers_yaml() { # url
  printf 'servers:\n  up:\n    url: %s\n    isolation: shared\n' "$1"
}

# A whole bare configuration: DIR holds its lock file.
bare_yaml() { # dir url
  printf '%s\n%s\nregistry: {mode: tofu, lock: '"'"'%s'"'"'}\n%s\n' \
    "$EDGE" "$BARE" "$1/registry.lock" "$(servers_yaml "$2")"
}

# A whole full configuration listening on PORT: identity with the dev
# issuer (mint a token with `warden token mint --roles bench`), a role
# granting the tool, limits that never refuse, the registry, the guards'
# defaults, the audit trail's default sinks.
full_yaml() { # dir url port
  printf '%s\n' "$EDGE" "identity:
  public_url: http://127.0.0.1:$3
  data_dir: '$1/data'
  dev_issuer: {enabled: true}
authorization:
  roles:
    bench:
      grants: [{tools: ['up/*'], max_risk: critical}]
$FULL_LIMITS
registry: {mode: tofu, lock: '$1/registry.lock'}
$(servers_yaml "$2")"
}
