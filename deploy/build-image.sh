#!/usr/bin/env bash
# Build the reminder-pipeline image with no container registry: the base is Debian bookworm made by
# mmdebstrap from Debian's archive (python3 is 3.11 there), imported as
# localhost/reminder-pipeline-base:bookworm; then the Dockerfile builds on it (pip reaches PyPI or
# $PIP_INDEX_URL). Then a smoke test of the image, and, when a PostgreSQL answers, of the roles:
# migrate, code server, webserver (time from `run` to /server_info answering), daemon, each role's
# HEALTHCHECK. See docs/deployment-container.md.
#
#   sudo deploy/build-image.sh            # as root (mmdebstrap, podman); about 3-5 minutes cold
#
# Settings (environment):
#   ENGINE=podman|docker         default podman (docker: `docker import` / `docker build`)
#   IMAGE=reminder-pipeline:ci   the image to build
#   BASE_IMAGE=localhost/reminder-pipeline-base:bookworm
#   REBUILD_BASE=1               make the base again even if it exists
#   DEBIAN_MIRROR=http://deb.debian.org/debian
#   STORAGE_DRIVER=overlay       podman storage driver (vfs where overlay cannot mount; slower)
#   HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt  mounted for pip during the build only
#                                (a TLS-inspecting proxy's CA); empty: none
#   PIP_INDEX_URL=...            a package index mirror for the build
#   INSTALL_TOOLS=1              apt-get install what is missing (root on Debian/Ubuntu)
#   SMOKE=0                      skip the smoke test
#   PG_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres  server for the role test (empty: skip)
#   SMOKE_WEB_PORT=13000 SMOKE_CODE_PORT=14000   host ports (the smoke test uses --network host)
#   KEEP_SMOKE_DB=1              keep the smoke test's databases
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-podman}
IMAGE=${IMAGE:-reminder-pipeline:ci}
BASE_IMAGE=${BASE_IMAGE:-localhost/reminder-pipeline-base:bookworm}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STORAGE_DRIVER=${STORAGE_DRIVER:-overlay}
HOST_CA_BUNDLE=${HOST_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
PG_ADMIN_URL=${PG_ADMIN_URL-postgresql://postgres@127.0.0.1:5432/postgres}
SMOKE_WEB_PORT=${SMOKE_WEB_PORT:-13000}
SMOKE_CODE_PORT=${SMOKE_CODE_PORT:-14000}
WORK=${WORK:-/var/tmp/reminder-pipeline-image}

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
say() { printf '== [%6ss] %s\n' "$(seconds_since "$T0")" "$*"; }

need_tools() {
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v "$ENGINE" >/dev/null || missing+=("$([ "$ENGINE" = podman ] && echo podman || echo docker.io)")
    if [ "$ENGINE" = podman ] && ! command -v runc >/dev/null; then missing+=(runc); fi
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "${INSTALL_TOOLS:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== installing from Debian: ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "missing: ${missing[*]} (apt-get install them, or run as root with INSTALL_TOOLS=1)" >&2
            exit 2
        fi
    fi
}
need_tools

# --- the engine, with the flags this kind of sandbox needs --------------------------------------
# Measured on a Debian 12 VM (kernel 6.18, cgroup v1 + v2 "hybrid" mounts, no systemd as PID 1):
#  - crun, podman's default runtime, refuses hybrid cgroups ("cgroups in hybrid mode not
#    supported, drop all controllers from cgroupv2"); runc (Debian package) works;
#  - the runtime may not raise RLIMIT_NOFILE / RLIMIT_NPROC above the caller's hard limits
#    ("setrlimit RLIMIT_NOFILE: Operation not permitted"): pass the current hard limits explicitly;
#  - no systemd: cgroupfs cgroup manager, events to a file.
# On an ordinary host these flags are harmless. Override with PODMAN_GLOBAL_FLAGS / RUN_FLAGS.
if [ "$ENGINE" = podman ]; then
    PODMAN_GLOBAL_FLAGS=${PODMAN_GLOBAL_FLAGS-"--runtime runc --storage-driver $STORAGE_DRIVER --cgroup-manager cgroupfs --events-backend file"}
    # Values at or under the caller's hard limits (RLIMIT_NPROC equal to the hard limit of 96363
    # was refused all the same: capped at 16384; NPROC counts per uid, threads included).
    NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
    [ "$NOFILE" = unlimited ] && NOFILE=1048576
    [ "$NOFILE" -gt 1048576 ] && NOFILE=1048576
    [ "$NPROC" = unlimited ] && NPROC=16384
    [ "$NPROC" -gt 16384 ] && NPROC=16384
    RUN_FLAGS=${RUN_FLAGS-"--ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=$NPROC:$NPROC"}
    # Without systemd podman logs "unable to get systemd connection" for every container that has a
    # HEALTHCHECK (it would run it from a systemd timer): harmless here, filtered out.
    # shellcheck disable=SC2086
    engine() { podman $PODMAN_GLOBAL_FLAGS "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
else
    RUN_FLAGS=${RUN_FLAGS-}
    engine() { docker "$@"; }
fi
say "engine: $ENGINE $(engine --version | head -1)"
mkdir -p "$WORK"

# --- 1. the base image: Debian bookworm minbase + python3, from Debian's archive only --------------
if [ "${REBUILD_BASE:-0}" != 1 ] && engine image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base $BASE_IMAGE exists (REBUILD_BASE=1 to make it again)"
else
    say "mmdebstrap $SUITE -> $WORK/base.tar"
    t=$(now)
    # Debian's python3 has no `python` name; the Dockerfile only calls python3.
    mmdebstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook='chroot "$1" python3 --version' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        "$SUITE" "$WORK/base.tar" "$DEBIAN_MIRROR" >"$WORK/mmdebstrap.log" 2>&1 \
        || { tail -20 "$WORK/mmdebstrap.log" >&2; exit 1; }
    say "mmdebstrap done in $(seconds_since "$t") s ($(du -h "$WORK/base.tar" | cut -f1) tarball)"
    engine import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
        "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
    rm -f "$WORK/base.tar"
    say "imported $BASE_IMAGE"
fi

# --- 2. the image ------------------------------------------------------------------------------------
BUILD_FLAGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" -f Dockerfile)
[ -n "${PIP_INDEX_URL:-}" ] && BUILD_FLAGS+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
if [ "$ENGINE" = podman ]; then
    # docker format: OCI images have no HEALTHCHECK. Host network: the build reaches PyPI like
    # the host does. The CA bundle is mounted for the pip step only, never stored in a layer.
    BUILD_FLAGS+=(--format docker --network host --pull=never $RUN_FLAGS)
    if [ -n "$HOST_CA_BUNDLE" ] && [ -f "$HOST_CA_BUNDLE" ]; then
        BUILD_FLAGS+=(-v "$HOST_CA_BUNDLE:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
    fi
else
    BUILD_FLAGS+=(--network host)
fi
say "build $IMAGE on $BASE_IMAGE"
t=$(now)
engine build "${BUILD_FLAGS[@]}" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; exit 1; }
BUILD_SECONDS=$(seconds_since "$t")
SIZE=$(engine image inspect --format '{{.Size}}' "$IMAGE")
BASE_SIZE=$(engine image inspect --format '{{.Size}}' "$BASE_IMAGE")
say "built $IMAGE in $BUILD_SECONDS s: $SIZE bytes ($((SIZE / 1000000)) MB; base $((BASE_SIZE / 1000000)) MB)"

[ "${SMOKE:-1}" = 1 ] || { say "SMOKE=0: done"; exit 0; }

# --- 3. smoke: the image alone ----------------------------------------------------------------------
# Podman runs a container's HEALTHCHECK from a systemd timer; with no systemd (a CI container) it
# logs "unable to get systemd connection" on every `run`: no timer then, `podman healthcheck run`
# asks by hand. Every check below goes through the image's own HEALTHCHECK command.
HEALTH_FLAGS=""
if [ "$ENGINE" = podman ] && [ ! -d /run/systemd/system ]; then HEALTH_FLAGS="--health-interval disable"; fi
# shellcheck disable=SC2086
run() { engine run --rm $RUN_FLAGS $HEALTH_FLAGS --network host "$@"; }
say "smoke: --help, user, healthcheck config"
run "$IMAGE" --help | head -3
[ "$(run --entrypoint id "$IMAGE" -u)" = 10001 ] || { echo "the image does not run as uid 10001" >&2; exit 1; }
run --entrypoint sh "$IMAGE" -c 'test -w "$DAGSTER_HOME" && test -w "$REMINDER_PIPELINE_HOME" && ! test -e /src' \
    || { echo "DAGSTER_HOME / REMINDER_PIPELINE_HOME not writable, or the source is in the image" >&2; exit 1; }
run --entrypoint /usr/local/bin/reminder-pipeline-healthcheck "$IMAGE"
engine image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q healthcheck \
    || { echo "no HEALTHCHECK in the image config (podman build needs --format docker)" >&2; exit 1; }
say "smoke: the image alone is fine"

# --- 4. smoke: the roles against a PostgreSQL (host network) -----------------------------------------
if [ -z "$PG_ADMIN_URL" ]; then say "PG_ADMIN_URL empty: no role test"; exit 0; fi
PY="import sys, psycopg2; c = psycopg2.connect(sys.argv[1], connect_timeout=3); c.autocommit = True"
if ! run --entrypoint python "$IMAGE" -c "$PY" "$PG_ADMIN_URL" 2>/dev/null; then
    say "no PostgreSQL answers at PG_ADMIN_URL: no role test (the image itself is fine)"
    exit 0
fi
STAMP=$(date +%Y%m%d%H%M%S)_$$
APP_DB=rp_image_$STAMP
DAG_DB=rp_image_${STAMP}_dagster
base_url=${PG_ADMIN_URL%/*}
# The app database and a Dagster storage database of its own (DAGSTER_PG_URL), so nothing is shared
# with another user of the server. (The CLI also creates a database named `dagster` when missing.)
sql() { run --entrypoint python "$IMAGE" -c "$PY; c.cursor().execute(sys.argv[2])" "$PG_ADMIN_URL" "$1"; }
sql "CREATE DATABASE $APP_DB"
sql "CREATE DATABASE $DAG_DB"
ENVS=(-e "DATABASE_URL=$base_url/$APP_DB" -e "DAGSTER_PG_URL=${base_url/postgresql:/postgresql+psycopg2:}/$DAG_DB"
      -e CODE_SERVER_HOST=127.0.0.1 -e "CODE_SERVER_PORT=$SMOKE_CODE_PORT")
# Fixed names (start runs in a subshell, so it cannot record them).
CONTAINERS=("rp-smoke-code-server-$$" "rp-smoke-webserver-$$" "rp-smoke-daemon-$$")
cleanup() {
    for c in "${CONTAINERS[@]}"; do engine rm -f -t 10 "$c" >/dev/null 2>&1 || true; done
    if [ "${KEEP_SMOKE_DB:-0}" != 1 ]; then
        sql "DROP DATABASE IF EXISTS $APP_DB WITH (FORCE)" >/dev/null 2>&1 || true
        sql "DROP DATABASE IF EXISTS $DAG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

start() {  # start NAME ARGS...: a detached role container
    local name=rp-smoke-$1-$$; shift
    # shellcheck disable=SC2086
    engine run -d --name "$name" $RUN_FLAGS $HEALTH_FLAGS --network host "${ENVS[@]}" "$IMAGE" "$@" >/dev/null
    echo "$name"
}
health_once() {  # the image's HEALTHCHECK, run by the engine itself
    if [ "$ENGINE" = podman ]; then
        engine healthcheck run "$1" >/dev/null 2>&1
    else  # docker runs it on its own schedule (interval 30 s): the same command, run now
        engine exec "$1" /opt/venv/bin/python /usr/local/bin/reminder-pipeline-healthcheck >/dev/null 2>&1
    fi
}
wait_healthy() {  # wait_healthy CONTAINER TIMEOUT: until the HEALTHCHECK passes; print what it says
    local deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if health_once "$1"; then
            engine exec "$1" /opt/venv/bin/python /usr/local/bin/reminder-pipeline-healthcheck; return 0
        fi
        engine exec "$1" /opt/venv/bin/python /usr/local/bin/reminder-pipeline-healthcheck >"$WORK/health.out" 2>&1 || true
        if [ "$(engine inspect --format '{{.State.Running}}' "$1")" != true ]; then break; fi
        sleep 0.5
    done
    cat "$WORK/health.out" >&2; engine logs --tail 30 "$1" >&2; return 1
}

# The smoke test's ports must be free (a gRPC server binds with SO_REUSEPORT: a leftover code
# server would share the port silently, a leftover webserver would answer for the new one).
for port in "$SMOKE_CODE_PORT" "$SMOKE_WEB_PORT"; do
    if run --entrypoint python "$IMAGE" -c "import socket, sys; s = socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
        echo "port $port on 127.0.0.1 is in use: set SMOKE_CODE_PORT / SMOKE_WEB_PORT to free ports" >&2; exit 1
    fi
done

say "migrate ($APP_DB)"
t=$(now)
run "${ENVS[@]}" "$IMAGE" migrate
say "migrate took $(seconds_since "$t") s"

t=$(now)
code=$(start code-server serve code-server --host 127.0.0.1)
wait_healthy "$code" 180
CODE_SECONDS=$(seconds_since "$t")
say "code server: run -> gRPC SERVING in $CODE_SECONDS s"

t=$(now)
web=$(start webserver serve webserver --host 127.0.0.1 --port "$SMOKE_WEB_PORT")
deadline=$(($(date +%s) + 180))
until curl -fsS -o "$WORK/server_info.json" "http://127.0.0.1:$SMOKE_WEB_PORT/server_info" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ] || [ "$(engine inspect --format '{{.State.Running}}' "$web")" != true ]; then
        engine logs --tail 40 "$web" >&2; echo "webserver did not answer /server_info" >&2; exit 1
    fi
    sleep 0.2
done
WEB_SECONDS=$(seconds_since "$t")
[ "$(engine inspect --format '{{.State.Running}}' "$web")" = true ] \
    || { engine logs --tail 40 "$web" >&2; echo "the webserver container is not running" >&2; exit 1; }
say "webserver: run -> /server_info answering in $WEB_SECONDS s: $(head -c 200 "$WORK/server_info.json")"
wait_healthy "$web" 30

t=$(now)
daemon=$(start daemon serve daemon)
wait_healthy "$daemon" 240
DAEMON_SECONDS=$(seconds_since "$t")
say "daemon: run -> liveness check passing in $DAEMON_SECONDS s"

# The code location as the webserver sees it, through GraphQL: loaded, with the four jobs.
curl -fsS -H 'Content-Type: application/json' \
    -d '{"query":"{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename ... on RepositoryLocation { repositories { jobs { name } } } } } } } }"}' \
    "http://127.0.0.1:$SMOKE_WEB_PORT/graphql" >"$WORK/workspace.json"
for job in assignment_reminders certification_reminders dynamics_sync notification_delivery; do
    grep -q "\"$job\"" "$WORK/workspace.json" || { echo "job $job not in the webserver's workspace" >&2; cat "$WORK/workspace.json" >&2; exit 1; }
done
say "webserver sees the code location with its 4 jobs over gRPC"
run "${ENVS[@]}" "$IMAGE" schedules

# Stop as `docker stop` / compose does: SIGTERM, which the CLI turns into SIGINT for its Dagster
# process. The time each role needs sets the compose stop_grace_period.
STOPS=""
for role in daemon webserver code-server; do
    t=$(now)
    engine stop -t 60 "rp-smoke-$role-$$" >/dev/null
    code=$(engine inspect --format '{{.State.ExitCode}}' "rp-smoke-$role-$$")
    STOPS="$STOPS $role $(seconds_since "$t") s (exit $code);"
done
say "stopped:$STOPS"

echo
echo "image:                         $IMAGE ($SIZE bytes, $((SIZE / 1000000)) MB; base $((BASE_SIZE / 1000000)) MB)"
echo "image build (podman build):    $BUILD_SECONDS s"
echo "code server run -> SERVING:    $CODE_SECONDS s"
echo "webserver run -> /server_info: $WEB_SECONDS s"
echo "daemon run -> liveness OK:     $DAEMON_SECONDS s"
echo "SIGTERM -> exited:            $STOPS"
say "all done"
