# shellcheck shell=bash
# Prepare the services the test suite talks to, then export their addresses.
#
# Sourced by `make test` (so the exports reach pytest). Each service is ensured in three steps:
# installed (Debian package, only when running as root), started when not running, and given what the
# tests need. Nothing here fails the build: a service that cannot be had is left absent, and the tests
# that need it skip with a message -- or fail under CI=true, so CI can never pass by skipping.
#
# Later issues add services by writing one `ensure_<name>` function and calling it at the bottom.

_hg_apt_updated=0

hg_log() { printf 'test-services: %s\n' "$*" >&2; }

# Install Debian packages that are missing; apt-get update runs at most once per invocation.
hg_apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    hg_log "missing packages ${missing[*]} (not root or no apt-get: install them yourself)"
    return 1
  fi
  if [ "$_hg_apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    _hg_apt_updated=1
  fi
  hg_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
}

ensure_postgres() {
  export HOOKGATE_TEST_PG_DSN="${HOOKGATE_TEST_PG_DSN:-postgresql://postgres@127.0.0.1:5432/test}"
  command -v pg_isready >/dev/null 2>&1 || hg_apt_install postgresql || return 0
  pg_isready -q -h 127.0.0.1 -p 5432 && return 0
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    hg_log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
  fi
}

ensure_redis() {
  export HOOKGATE_TEST_REDIS_URL="${HOOKGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
  command -v redis-server >/dev/null 2>&1 || hg_apt_install redis-server || return 0
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
  hg_log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
}

# True when something listens on 127.0.0.1:$1.
hg_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The transport tests start brokers of their own (each persisting to its test's folder, restarted in
# the middle), so the binaries are what they need; the shared brokers are started for `make bench`
# and for trying the examples of docs/outbound.md.
ensure_nats() {
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || hg_apt_install nats-server || return 0
  hg_listening 4222 && return 0
  hg_log "starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd "${TMPDIR:-/tmp}/hookgate-nats" >/dev/null 2>&1 || true
}

ensure_rabbitmq() {
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || hg_apt_install rabbitmq-server || return 0
  hg_listening 5672 && return 0
  hg_log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
}

ensure_mosquitto() {
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || hg_apt_install mosquitto || return 0
  hg_listening 1883 && return 0
  hg_log "starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf >/dev/null 2>&1 || mosquitto -d >/dev/null 2>&1 || true
}

ensure_chromium() {
  # Browser tests drive Debian's Chromium with Playwright (never `playwright install`).
  export HOOKGATE_TEST_CHROMIUM="${HOOKGATE_TEST_CHROMIUM:-/usr/bin/chromium}"
  [ -x "$HOOKGATE_TEST_CHROMIUM" ] || hg_apt_install chromium || true
}

ensure_caddy() {
  # The Caddyfile is tested with the real Caddy from Debian's packages.
  command -v caddy >/dev/null 2>&1 || hg_apt_install caddy || true
}

# `--only-helpers` defines the functions above and starts nothing (used by `make bench`).
if [ "${1:-}" != "--only-helpers" ]; then
  # The SQLite store and the local engine need nothing beyond Python; services for later features:
  ensure_postgres || true
  ensure_redis || true
  ensure_nats || true
  ensure_rabbitmq || true
  ensure_mosquitto || true
  ensure_chromium || true
  ensure_caddy || true
fi
