#!/usr/bin/env bash
# Create the virtualenv; on Debian/Ubuntu install python3-venv first if it is missing.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
[ -x "$venv/bin/python" ] && exit 0
if ! "$python" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "python venv support missing: installing python3-venv via apt" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  "$python" -m venv "$venv"
fi
