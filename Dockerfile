# gitstage: one image for the operator (`gitstage operator`) and for the fetcher init container
# of served Deployments (`gitstage fetch`). Build: docker build -t gitstage:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Stage 1: the gitstage wheel and the wheels of its dependencies, extras included.
FROM ${PYTHON_IMAGE} AS build
# Extras installed in the image, comma-separated: s3 for DVC remotes on S3 (boto3).
ARG GITSTAGE_EXTRAS=operator,s3
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels ".[${GITSTAGE_EXTRAS}]"

# Stage 2: slim runtime, no compiler, no build context, a non-root user. git with an SSH client
# (SSH sources), gpg and gpgv (OpenPGP-signed tags), ssh-keygen (SSH-signed tags, in
# openssh-client). ca-certificates=20* takes the newest bundle of the base's release: a dated
# pin goes stale, and apt refuses to downgrade the base's own bundle.
FROM ${PYTHON_IMAGE}
ARG GITSTAGE_EXTRAS=operator,s3
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20* git=1:2.39.* \
       openssh-client=1:9.2p1-* gpg=2.2.40-* gpgv=2.2.40-* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gitstage \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin gitstage
# Installs from the build stage's wheels only (no index), without keeping them in a layer: the
# versions are the ones stage 1 resolved (DL3013). Then the tools the features call (DL3001:
# ssh only prints its version).
# hadolint ignore=DL3001,DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels \
       "gitstage[${GITSTAGE_EXTRAS}]" \
    && gitstage --version \
    && git --version \
    && ssh -V \
    && gpgv --version \
    && python -c "import boto3"
# The root filesystem is read-only at run time: HOME and caches point at the pod's emptyDirs.
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GITSTAGE_CACHE_DIR=/var/cache/gitstage/mirrors
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["gitstage"]
CMD ["operator"]
