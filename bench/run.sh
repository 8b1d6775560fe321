#!/usr/bin/env bash
# bench/run.sh: idtok's benchmark, from a fresh clone, in one command.
#
#   bench/run.sh
#
# What it does:
#   1. builds idtok (`cargo build --release --locked`) and the stand-in server bench/standin.rs (plain
#      `rustc -O`, standard library only);
#   2. starts the stand-in on 127.0.0.1 (a free port): the metadata server's identity endpoint, `/` for
#      google-auth's ping, and a token endpoint (`POST /token` -> {"id_token": ...}) for a service-account key
#      (the fake test key of tests/fixtures, its token_uri pointing at the stand-in);
#   3. measures, in one run, interleaved (ROUNDS rounds; in each round every case runs RUNS/ROUNDS times, the
#      case order rotating from round to round):
#        metadata     idtok metadata --no-cache               (one metadata request)
#        metadata-cached  idtok metadata, cache warm          (no request at all)
#        cached       idtok print-identity-token, cache warm  (no request at all)
#        sa-key       idtok print-identity-token --no-cache with a service-account key (sign + one POST)
#        curl         curl -s -H 'Metadata-Flavor: Google' on the same metadata URL
#        google-auth  a fresh `python3 -c` calling google.oauth2.id_token.fetch_id_token against the stand-in
#                     (only when google-auth can be imported or pip-installed into target/bench/venv)
#      with hyperfine (-N, no shell) when present, else with the stand-in's own timing loop;
#   4. prints medians, the ratios idtok/curl and google-auth/idtok, peak RSS (/usr/bin/time -v's maximum
#      resident set size, else wait4 through python3) and the stripped release binary's size, each next to
#      its target. A case that cannot run (for example a command this build does not have yet) is reported
#      as "skipped: ..." and the rest goes on.
#
# Every measured command talks only to 127.0.0.1: proxies are unset, GCE_METADATA_HOST and GCE_METADATA_IP
# name the stand-in, and the key's token_uri points at it. Only the optional set-up reaches the network:
# `apt-get install hyperfine time` when they are missing (as root, with apt-get) and `pip install
# google-auth requests` into a venv. BENCH_NO_INSTALL=1 forbids both.
#
# Knobs (environment): BENCH_RUNS (default 100 per fast case), BENCH_ROUNDS (5), BENCH_GOOGLE_AUTH_RUNS (10),
# BENCH_NO_INSTALL=1, BENCH_NO_BUILD=1 (reuse target/release/idtok), BENCH_TIMER=loop (the stand-in's loop
# even when hyperfine is there), CARGO_TARGET_DIR.
#
# Targets (issue 4): metadata <= 0.5x curl; cached <= 1/3 curl; google-auth / idtok > 100; peak RSS < 10 MB;
# stripped binary < 4 MB (MB = 10^6 bytes, so both limits are strict).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET_DIR/bench
IDTOK=$TARGET_DIR/release/idtok
RUNS=${BENCH_RUNS:-100}
ROUNDS=${BENCH_ROUNDS:-5}
GA_RUNS=${BENCH_GOOGLE_AUTH_RUNS:-10}
AUD=https://bench.example

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

can_install() {
    [[ ${BENCH_NO_INSTALL:-} != 1 ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]
}

mkdir -p "$WORK"
rm -rf "$WORK/cache" "$WORK/runs" "$WORK/gcloud"
mkdir -p "$WORK/cache" "$WORK/runs" "$WORK/gcloud"

# ---- 1. build ----
if [[ ${BENCH_NO_BUILD:-} != 1 ]]; then
    say "bench: cargo build --release --locked"
    cargo build --release --locked >&2
fi
[[ -x $IDTOK ]] || die "no release binary at $IDTOK"
if [[ ! -x $WORK/standin || bench/standin.rs -nt $WORK/standin ]]; then
    say "bench: rustc -O bench/standin.rs"
    rustc -O --edition 2021 bench/standin.rs -o "$WORK/standin"
fi
STANDIN=$WORK/standin

# ---- tools ----
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})) && can_install; then
    say "bench: apt-get install -y ${missing[*]}"
    (apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y "${missing[@]}" >/dev/null 2>&1; }) ||
        say "bench: could not install ${missing[*]}; falling back"
fi
HYPERFINE=$(command -v hyperfine || true)
[[ ${BENCH_TIMER:-} == loop ]] && HYPERFINE=

# ---- 2. the stand-in ----
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset GCE_METADATA_ROOT GOOGLE_APPLICATION_CREDENTIALS CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE \
    CLOUDSDK_CORE_ACCOUNT CLOUDSDK_ACTIVE_CONFIG_NAME CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT \
    CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS CLOUDSDK_AUTH_TOKEN_HOST \
    IDTOK_NO_CACHE IDTOK_MIN_TTL IDTOK_OUTPUT IDTOK_TIMEOUT GOOGLE_CLOUD_UNIVERSE_DOMAIN SSL_CERT_FILE
rm -f "$WORK/port"
"$STANDIN" serve "$WORK/port" &
STANDIN_PID=$!
trap 'kill "$STANDIN_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $WORK/port ]] && break; sleep 0.05; done
[[ -s $WORK/port ]] || die "the stand-in did not start"
HOSTPORT=127.0.0.1:$(cat "$WORK/port")
export GCE_METADATA_HOST=$HOSTPORT GCE_METADATA_IP=$HOSTPORT
export IDTOK_CACHE_DIR=$WORK/cache CLOUDSDK_CONFIG=$WORK/gcloud
say "bench: stand-in on $HOSTPORT"

KEY=$WORK/sa-key.json
{
    printf '{"type":"service_account","project_id":"bench-project","private_key_id":"bench-kid",'
    printf '"private_key":"%s",' "$(awk '{printf "%s\\n", $0}' tests/fixtures/test-key.pem)"
    printf '"client_email":"bench@bench-project.iam.gserviceaccount.com","client_id":"1234567890",'
    printf '"token_uri":"http://%s/token"}\n' "$HOSTPORT"
} >"$KEY"
chmod 600 "$KEY"

# ---- google-auth ----
PYTHON=
if command -v python3 >/dev/null; then
    if python3 -c 'import google.auth, requests' 2>/dev/null; then
        PYTHON=$(command -v python3)
    elif [[ -x $WORK/venv/bin/python ]] && "$WORK/venv/bin/python" -c 'import google.auth, requests' 2>/dev/null; then
        PYTHON=$WORK/venv/bin/python
    elif [[ ${BENCH_NO_INSTALL:-} != 1 ]]; then
        say "bench: pip install google-auth requests (into $WORK/venv)"
        if python3 -m venv "$WORK/venv" >/dev/null 2>&1 &&
            "$WORK/venv/bin/pip" install -q google-auth requests >/dev/null 2>&1; then
            PYTHON=$WORK/venv/bin/python
        fi
    fi
fi

# ---- 3. the cases ----
declare -A CMD=()
NAMES=()
SKIPPED=()
GA_SCRIPT="import google.auth.transport.requests as r, google.oauth2.id_token as t; print(t.fetch_id_token(r.Request(), '$AUD'))"
URL="http://$HOSTPORT/computeMetadata/v1/instance/service-accounts/default/identity?audience=$AUD&format=standard"

# Runs a case once and keeps it when it prints a JWT.
add_case() {
    local name=$1 out err
    shift
    err=$WORK/runs/$name.err
    if out=$("$@" 2>"$err") && [[ $out =~ ^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$ ]]; then
        NAMES+=("$name")
        CMD[$name]=$(printf '%q ' "$@")
    else
        local why
        why=$(grep -m1 -v '^\s*$' "$err" 2>/dev/null || true)
        SKIPPED+=("skipped: $name: ${why:-did not print a token}")
    fi
}

add_case metadata "$IDTOK" metadata --audience "$AUD" --no-cache
# The same cache hit as `cached`, through the metadata command: measurable before print-identity-token is.
"$IDTOK" metadata --audience "$AUD" >/dev/null 2>&1 || true
add_case metadata-cached "$IDTOK" metadata --audience "$AUD"
# Warm the cache, then check that the case is a hit.
if "$IDTOK" print-identity-token --audiences "$AUD" --credential-file-override "$KEY" >/dev/null 2>"$WORK/runs/warm.err" &&
    "$IDTOK" print-identity-token --audiences "$AUD" --credential-file-override "$KEY" -o json 2>/dev/null |
    grep -q '"cached":true'; then
    add_case cached "$IDTOK" print-identity-token --audiences "$AUD" --credential-file-override "$KEY"
else
    SKIPPED+=("skipped: cached: $(grep -m1 -v '^\s*$' "$WORK/runs/warm.err" || echo 'the second run was not a cache hit')")
fi
add_case sa-key "$IDTOK" print-identity-token --audiences "$AUD" --credential-file-override "$KEY" --no-cache
if command -v curl >/dev/null; then
    add_case curl curl -s -H 'Metadata-Flavor: Google' "$URL"
else
    SKIPPED+=("skipped: curl: not installed")
fi
FAST=("${NAMES[@]}")
if [[ -n $PYTHON ]]; then
    add_case google-auth "$PYTHON" -c "$GA_SCRIPT"
else
    SKIPPED+=("skipped: google-auth: cannot import or pip-install google-auth and requests")
fi
HAVE_GA=0
[[ " ${NAMES[*]} " == *" google-auth "* ]] && HAVE_GA=1
((${#FAST[@]})) || die "no case could run"

# ---- timing ----
per_round=$(((RUNS + ROUNDS - 1) / ROUNDS))
ga_per_round=$(((GA_RUNS + ROUNDS - 1) / ROUNDS))
((ga_per_round >= 2)) || ga_per_round=2
timer=${HYPERFINE:+hyperfine}
say "bench: timing with ${timer:-the stand-in loop}: $ROUNDS rounds x $per_round runs (google-auth: x $ga_per_round)"

# run_round OUT_JSON RUNS NAME...: one hyperfine (or stand-in loop) pass over the named cases.
run_round() {
    local out=$1 runs=$2
    shift 2
    if [[ -n $HYPERFINE ]]; then
        local args=()
        for n in "$@"; do args+=(-n "$n" "${CMD[$n]}"); done
        "$HYPERFINE" -N --style none --warmup 2 --runs "$runs" --export-json "$out" "${args[@]}" >>"$WORK/runs/hyperfine.log" 2>&1
    else
        local cases=$out.cases
        : >"$cases"
        for n in "$@"; do
            # Re-split the quoted command into argv (the names and paths used here have no newlines).
            eval "local argv=(${CMD[$n]})"
            (IFS=$'\x1f'; printf '%s\x1f%s\n' "$n" "${argv[*]}") >>"$cases"
        done
        "$STANDIN" measure "$runs" "$cases" "$out"
    fi
}

for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < ${#FAST[@]}; i++)); do order+=("${FAST[(i + r) % ${#FAST[@]}]}"); done
    run_round "$WORK/runs/round-$r.json" "$per_round" "${order[@]}"
    if ((HAVE_GA)); then
        run_round "$WORK/runs/round-$r-ga.json" "$ga_per_round" google-auth
    fi
done

declare -A MEDIAN=() N=()
while read -r name median _min _mean n; do
    MEDIAN[$name]=$median
    N[$name]=$n
done < <("$STANDIN" stats "$WORK"/runs/round-*.json)

# ---- peak RSS ----
declare -A RSS=()
peak_rss_kib() {
    local best=0 v
    for _ in 1 2 3; do
        if [[ -x /usr/bin/time ]]; then
            /usr/bin/time -f '%M' -o "$WORK/runs/rss" "$@" >/dev/null 2>&1 || return 1
            v=$(tail -n1 "$WORK/runs/rss")
        elif command -v python3 >/dev/null; then
            v=$(python3 -c 'import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(os.wait4(p.pid, 0)[2].ru_maxrss)' "$@") || return 1
        else
            return 1
        fi
        ((v > best)) && best=$v
    done
    echo "$best"
}
for n in "${NAMES[@]}"; do
    eval "argv=(${CMD[$n]})"
    RSS[$n]=$(peak_rss_kib "${argv[@]}" || echo "n/a")
done

# ---- 4. report ----
SIZE=$(wc -c <"$IDTOK")
STRIPPED=$SIZE
if command -v strip >/dev/null; then
    cp "$IDTOK" "$WORK/idtok.stripped" && strip "$WORK/idtok.stripped" 2>/dev/null &&
        STRIPPED=$(wc -c <"$WORK/idtok.stripped")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
check() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    ok = (op == "<=") ? v <= t : (op == "<") ? v < t : v > t; print ok ? "PASS" : "FAIL" }'; }

echo
echo "idtok benchmark: $(uname -sm), $(nproc 2>/dev/null || echo '?') CPUs, stand-in on $HOSTPORT, timer: ${timer:-stand-in loop}"
echo "idtok $("$IDTOK" --version | awk '{print $2}'), $(curl --version 2>/dev/null | head -n1 | awk '{print $1, $2}')"
echo
printf '%-16s %12s %8s %14s\n' case median_ms runs peak_rss_kib
for n in metadata metadata-cached cached sa-key curl google-auth; do
    [[ -n ${MEDIAN[$n]:-} ]] || continue
    printf '%-16s %12s %8s %14s\n' "$n" "${MEDIAN[$n]}" "${N[$n]}" "${RSS[$n]:-n/a}"
done
for s in "${SKIPPED[@]}"; do echo "$s"; done
echo
printf '%-40s %12s %10s %s\n' measure value target verdict
row() { printf '%-40s %12s %10s %s\n' "$1" "$2" "$3" "$4"; }
if [[ -n ${MEDIAN[metadata]:-} && -n ${MEDIAN[curl]:-} ]]; then
    v=$(ratio "${MEDIAN[metadata]}" "${MEDIAN[curl]}")
    row "metadata / curl (wall time)" "$v" "<= 0.5" "$(check "$v" '<=' 0.5)"
fi
if [[ -n ${MEDIAN[cached]:-} && -n ${MEDIAN[curl]:-} ]]; then
    v=$(ratio "${MEDIAN[cached]}" "${MEDIAN[curl]}")
    row "cached / curl (wall time)" "$v" "<= 0.333" "$(check "$v" '<=' 0.3334)"
fi
if [[ -n ${MEDIAN[metadata-cached]:-} && -n ${MEDIAN[curl]:-} ]]; then
    v=$(ratio "${MEDIAN[metadata-cached]}" "${MEDIAN[curl]}")
    row "metadata-cached / curl (wall time)" "$v" "<= 0.333" "$(check "$v" '<=' 0.3334)"
fi
if [[ -n ${MEDIAN[sa-key]:-} && -n ${MEDIAN[curl]:-} ]]; then
    row "sa-key / curl (wall time)" "$(ratio "${MEDIAN[sa-key]}" "${MEDIAN[curl]}")" "-" "(info)"
fi
for n in metadata metadata-cached cached; do
    if [[ -n ${MEDIAN[google-auth]:-} && -n ${MEDIAN[$n]:-} ]]; then
        v=$(ratio "${MEDIAN[google-auth]}" "${MEDIAN[$n]}")
        row "google-auth / $n (wall time)" "$v" "> 100" "$(check "$v" '>' 100)"
    fi
done
peak=0
for n in metadata metadata-cached cached sa-key; do
    [[ ${RSS[$n]:-n/a} =~ ^[0-9]+$ ]] && ((RSS[$n] > peak)) && peak=${RSS[$n]}
done
if ((peak > 0)); then
    mb=$(awk -v k="$peak" 'BEGIN { printf "%.2f", k * 1024 / 1e6 }')
    row "idtok peak RSS (MB, worst case)" "$mb" "< 10" "$(check "$mb" '<' 10)"
fi
mb=$(awk -v b="$STRIPPED" 'BEGIN { printf "%.2f", b / 1e6 }')
row "stripped release binary (MB)" "$mb" "< 4" "$(check "$mb" '<' 4)"
echo "($STRIPPED bytes stripped; target/release/idtok is $SIZE bytes)"
