# gitstage: one image for the operator (`gitstage operator`) and for the fetcher init container
# of served Deployments (`gitstage fetch`). Build: docker build -t gitstage:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Stage 1: the gitstage wheel and the wheels of its dependencies.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels '.[operator]'

# Stage 2: slim runtime with git, no compiler, no build context, a non-root user.
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=2023* git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gitstage \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin gitstage
# Installs from the build stage's wheels only (no index), without keeping them in a layer; the
# operator extra is the one version built there (DL3013: nothing to pin against an index).
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels 'gitstage[operator]' \
    && gitstage --version \
    && git --version
# The root filesystem is read-only at run time: HOME and caches point at the pod's emptyDirs.
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GITSTAGE_CACHE_DIR=/var/cache/gitstage/mirrors
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["gitstage"]
CMD ["operator"]
