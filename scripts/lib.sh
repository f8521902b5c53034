# shellcheck shell=bash
# Shared helpers for the orderd environment scripts (scripts/pg, scripts/kafka).
# Source it; do not execute it.
#
# Environment (all optional):
#   ORDERD_RUN_DIR                 state/log directory (default: $ORDERD_ROOT/.run)
#   ORDERD_PG_PORT                 PostgreSQL TCP port (default: 25432)
#   ORDERD_KAFKA_PORT              Kafka PLAINTEXT port (default: 29092)
#   ORDERD_KAFKA_CONTROLLER_PORT   Kafka KRaft controller port (default: KAFKA_PORT+1)
#   ORDERD_KAFKA_SASL_PORT         Kafka SASL_PLAINTEXT (SCRAM, ACLs) port (default: KAFKA_PORT+2)

if [[ -n "${_ORDERD_LIB_SOURCED:-}" ]]; then
    return 0
fi
_ORDERD_LIB_SOURCED=1

ORDERD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export ORDERD_ROOT

ORDERD_RUN_DIR="$(realpath -m -- "${ORDERD_RUN_DIR:-$ORDERD_ROOT/.run}")"
export ORDERD_RUN_DIR

# Debian's postgresql-15 binaries (scripts/pg installs them)
PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"

# Below 32768: ports in Linux's ephemeral range (32768-60999) can be taken
# by any outgoing connection's local end, and a server then fails to bind.
ORDERD_PG_PORT="${ORDERD_PG_PORT:-25432}"
ORDERD_KAFKA_PORT="${ORDERD_KAFKA_PORT:-29092}"
ORDERD_KAFKA_CONTROLLER_PORT="${ORDERD_KAFKA_CONTROLLER_PORT:-$((ORDERD_KAFKA_PORT + 1))}"
ORDERD_KAFKA_SASL_PORT="${ORDERD_KAFKA_SASL_PORT:-$((ORDERD_KAFKA_PORT + 2))}"
export ORDERD_PG_PORT ORDERD_KAFKA_PORT ORDERD_KAFKA_CONTROLLER_PORT ORDERD_KAFKA_SASL_PORT

# die MESSAGE...: print an error to stderr and exit 1.
die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# log MESSAGE...: progress message to stderr (stdout is kept clean for `env`).
log() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

_orderd_check_port() {
    local name="$1" value="$2"
    if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
        die "$name must be a tcp port number, got '$value'"
    fi
}
_orderd_check_port ORDERD_PG_PORT "$ORDERD_PG_PORT"
_orderd_check_port ORDERD_KAFKA_PORT "$ORDERD_KAFKA_PORT"
_orderd_check_port ORDERD_KAFKA_CONTROLLER_PORT "$ORDERD_KAFKA_CONTROLLER_PORT"
_orderd_check_port ORDERD_KAFKA_SASL_PORT "$ORDERD_KAFKA_SASL_PORT"

# ensure_run_dir: create $ORDERD_RUN_DIR, keeping it out of git.
ensure_run_dir() {
    mkdir -p "$ORDERD_RUN_DIR" || die "cannot create run dir $ORDERD_RUN_DIR"
    if [[ ! -e "$ORDERD_RUN_DIR/.gitignore" ]]; then
        printf '*\n' >"$ORDERD_RUN_DIR/.gitignore"
    fi
}

# as_root CMD...: run a command as root (directly, or through sudo).
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

_ORDERD_APT_UPDATED=""

# ensure_apt_packages PKG...: install the Debian packages that are not installed.
# Runs `apt-get update` at most once per script run; waits for a busy dpkg lock.
ensure_apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get to install them"
    log "installing: ${missing[*]}"
    local apt_opts=(-o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)
    if [[ -z "$_ORDERD_APT_UPDATED" ]]; then
        # apt-get update does not wait on the lists lock; retry while another apt runs.
        local tries=0
        until as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q update >&2; do
            tries=$((tries + 1))
            ((tries < 30)) || die "apt-get update failed"
            log "apt-get update failed (apt busy?), retrying in 10 s"
            sleep 10
        done
        _ORDERD_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q install -y \
        --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install failed for: ${missing[*]}"
}

# wait_until TIMEOUT_SECONDS CMD...: run CMD every 0.2 s until it succeeds.
# Returns 1 if it did not succeed within TIMEOUT_SECONDS.
wait_until() {
    local timeout="$1"
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# tcp_open PORT [HOST]: true if something accepts TCP connections on HOST:PORT.
tcp_open() {
    local port="$1" host="${2:-127.0.0.1}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
