# syntax=docker/dockerfile:1
# One image for every Nexent process: `nexent serve [--service S]`, `nexent worker`, `nexent migrate`, `nexent admin`.
# docs/deployment.md says how to build it with Docker and with Podman, and every build argument.
#
#   docker build -t nexent --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index> .
#
# BASE_IMAGE: any Debian 12 (bookworm) image; its Python 3.11 runs Nexent. The tests use one made with debootstrap.
ARG BASE_IMAGE=debian:bookworm-slim
# NODE_IMAGE: Node.js 20.9 or newer on Debian, for the web UI's build.
ARG NODE_IMAGE=node:22-bookworm-slim
# UI_SOURCE: `build` builds the UI in the `ui-build` stage; `prebuilt` takes web/out from the build context
# (built beforehand by scripts/web, as the tests do where no Node.js image can be pulled).
ARG UI_SOURCE=build

# ---- System: Debian's Python 3.11 and the libraries Nexent needs ----------------------------------------------------
FROM ${BASE_IMAGE} AS system
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Python 3.11, and the two libraries the OCR engine's OpenCV needs; tini reaps the children (MCP servers, sandbox).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates libgl1 libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*

# ---- The image's requirements: the lock's pins that Nexent needs (a stage of its own, so that an edit of
# pyproject.toml that changes none of them leaves the dependencies' layer cached) ---------------------------------------
FROM system AS requirements
COPY pyproject.toml requirements.lock deploy/image/image_requirements.py /tmp/build/
RUN python3 /tmp/build/image_requirements.py /tmp/build/pyproject.toml /tmp/build/requirements.lock >/image.lock

# ---- Python: the virtual environment with the locked dependencies and Nexent itself -------------------------------
FROM system AS python
# UV_OFFLINE=1: install only from the uv cache mounted at UV_CACHE_DIR (podman build --volume), no network.
# TORCH_INDEX_URL: a wheel index with PyTorch's CPU build (PyTorch publishes one); unset, the CPU wheel must be in
# /wheels (a build volume). TORCH_VERSION must match requirements.lock's pin.
ARG UV_OFFLINE=
ARG UV_CACHE_DIR=/tmp/uv-cache
ARG TORCH_INDEX_URL=
ARG TORCH_VERSION=2.13.0+cpu
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
COPY scripts/uv-requirements.txt /tmp/build/
COPY --from=requirements /image.lock /tmp/build/image.lock
# uv (pinned with hashes) in its own environment, then the image's environment: every package with its hash from
# the lock, no resolution (--no-deps), PyTorch's CPU build on its own.
RUN mkdir -p /wheels \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install -q --require-hashes --find-links /wheels ${UV_OFFLINE:+--no-index} \
      -r /tmp/build/uv-requirements.txt \
 && /opt/uv/bin/uv venv -q --python /usr/bin/python3 /opt/nexent \
 && /opt/uv/bin/uv pip install -q --python /opt/nexent/bin/python --cache-dir "$UV_CACHE_DIR" ${UV_OFFLINE:+--offline} \
      --no-deps --require-hashes -r /tmp/build/image.lock \
 && /opt/uv/bin/uv pip install -q --python /opt/nexent/bin/python --cache-dir "$UV_CACHE_DIR" ${UV_OFFLINE:+--offline} \
      --no-deps --find-links /wheels ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" \
 && rm -rf /tmp/uv-cache
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/uv/bin/uv pip install -q --python /opt/nexent/bin/python --no-cache --no-deps --no-build-isolation /src \
 && /opt/nexent/bin/nexent openapi --output /tmp/openapi.json

# ---- Web UI ---------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS ui-build
WORKDIR /web
COPY web/package.json web/package-lock.json web/.npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web ./
COPY --from=python /tmp/openapi.json ./openapi.json
RUN npx openapi-typescript openapi.json -o src/api/schema.d.ts --silent \
 && NEXT_TELEMETRY_DISABLED=1 npx next build \
 && find out -type f \( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name '*.json' -o -name '*.svg' \
      -o -name '*.txt' -o -name '*.map' \) -exec gzip -9 -n -k {} +

FROM ${BASE_IMAGE} AS ui-prebuilt
COPY web/out /web/out

FROM ui-${UI_SOURCE} AS ui

# ---- The image --------------------------------------------------------------------------------------------------------
FROM python AS nexent
RUN rm -rf /opt/uv /src /tmp/build /tmp/openapi.json \
 && groupadd --system --gid 10001 nexent \
 && useradd --system --uid 10001 --gid nexent --home-dir /var/lib/nexent --create-home nexent \
 && (rmdir /wheels 2>/dev/null || true)
COPY --from=ui /web/out /opt/nexent/web
COPY deploy/image/healthcheck.py /opt/nexent/healthcheck.py
ENV PATH=/opt/nexent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    NEXENT_HOST=0.0.0.0 \
    NEXENT_DATA_DIR=/var/lib/nexent \
    NEXENT_WEB_DIR=/opt/nexent/web
USER nexent
WORKDIR /var/lib/nexent
VOLUME ["/var/lib/nexent"]
EXPOSE 5010 5011 5012 5013 5014 5019
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 CMD ["python", "/opt/nexent/healthcheck.py"]
ENTRYPOINT ["tini", "--", "nexent"]
CMD ["serve"]
