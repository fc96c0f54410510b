#!/usr/bin/env bash
# Debian packages some tests need: PostgreSQL's server binaries (shared-tracking test).
# Installs only what is missing; needs root (CI and the dev boxes run as root).
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: PostgreSQL server missing; run 'sudo apt-get install -y postgresql'" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
