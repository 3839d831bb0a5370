# One image for the three Dagster roles of reminder-pipeline (docs/deployment-container.md):
#
#   reminder-pipeline serve code-server --host 0.0.0.0   # gRPC code location, port 4000
#   reminder-pipeline serve webserver   --host 0.0.0.0   # UI + GraphQL, port 3000 (the default CMD)
#   reminder-pipeline serve daemon                       # schedules, sensors, run queue
#   reminder-pipeline migrate | watchdog | doctor        # one-shot commands
#
# BASE_IMAGE is any Debian-like image with Python 3.11+ as `python3` (with the venv module):
# python:3.11-slim, or the Debian bookworm base deploy/build-image.sh makes with mmdebstrap when no
# container registry is reachable. No compiler is needed: every dependency ships a manylinux wheel.
ARG BASE_IMAGE=python:3.11-slim

# --- build: the virtualenv, installed (not editable) from a copy of the source --------------------
FROM ${BASE_IMAGE} AS build
# Optional, build time only (never in the final image): a package index mirror and a CA bundle
# for it or for a TLS-inspecting proxy, e.g. `--build-arg PIP_CERT=/run/host-ca.crt` together
# with `-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro` (podman build).
ARG PIP_INDEX_URL=
ARG PIP_CERT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The dependencies first, from pyproject.toml and the lock file only: this layer is reused until
# one of the two changes, so a source-only change rebuilds in seconds.
COPY pyproject.toml constraints.txt /src/
RUN set -eu; \
    [ -n "${PIP_INDEX_URL}" ] && export PIP_INDEX_URL || unset PIP_INDEX_URL; \
    [ -n "${PIP_CERT}" ] && export PIP_CERT || unset PIP_CERT; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/python -m pip install --upgrade -c constraints.txt pip setuptools wheel; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >/tmp/requirements.txt; \
    /opt/venv/bin/python -m pip install -c constraints.txt -r /tmp/requirements.txt
# Then the package itself, not editable: after this the source is not needed (the final stage
# copies only /opt/venv).
COPY . /src
RUN set -eu; \
    [ -n "${PIP_INDEX_URL}" ] && export PIP_INDEX_URL || unset PIP_INDEX_URL; \
    [ -n "${PIP_CERT}" ] && export PIP_CERT || unset PIP_CERT; \
    /opt/venv/bin/python -m pip install -c constraints.txt .; \
    /opt/venv/bin/reminder-pipeline --help >/dev/null

# --- run: the base, the virtualenv, a non-root user ----------------------------------------------
FROM ${BASE_IMAGE}
ARG APP_UID=10001
RUN set -eu; \
    groupadd --system --gid "${APP_UID}" dagster; \
    useradd --system --uid "${APP_UID}" --gid "${APP_UID}" --home-dir /opt/dagster --no-create-home \
        --shell /usr/sbin/nologin dagster; \
    mkdir -p /opt/dagster/dagster_home; \
    chown -R dagster:dagster /opt/dagster
COPY --from=build /opt/venv /opt/venv
COPY deploy/container-healthcheck.py /usr/local/bin/reminder-pipeline-healthcheck
RUN chmod 0755 /usr/local/bin/reminder-pipeline-healthcheck

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    REMINDER_PIPELINE_HOME=/opt/dagster
USER dagster
WORKDIR /opt/dagster
EXPOSE 3000 4000

# One check for every role: it finds the role in the container's command line (or $ROLE) and
# asks that role: webserver GET /server_info, code server `dagster api grpc-health-check`,
# daemon `dagster-daemon liveness-check`; any other command (migrate, watchdog) is healthy.
HEALTHCHECK --interval=30s --timeout=20s --start-period=90s --retries=3 \
    CMD ["/opt/venv/bin/python", "/usr/local/bin/reminder-pipeline-healthcheck"]

ENTRYPOINT ["reminder-pipeline"]
CMD ["serve", "webserver", "--host", "0.0.0.0"]
