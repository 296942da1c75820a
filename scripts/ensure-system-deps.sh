#!/usr/bin/env bash
# libp2p 0.8.1 pulls fastecdsa, a C extension built from source: it needs gcc and the GMP headers.
# On a fresh Debian-like machine where we are root, install them; elsewhere say what is missing.
set -euo pipefail
if [ -f /usr/include/gmp.h ] || [ -f /usr/include/x86_64-linux-gnu/gmp.h ] || [ -f /usr/include/aarch64-linux-gnu/gmp.h ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libgmp-dev (needed to build fastecdsa for libp2p)" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgmp-dev gcc >/dev/null
else
  echo "warning: GMP headers not found; install libgmp-dev (Debian/Ubuntu) or gmp-devel (Fedora) if the libp2p install fails" >&2
fi
