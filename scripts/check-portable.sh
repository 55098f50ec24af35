#!/usr/bin/env bash
# Whether a toolwarden binary is the portable one the release ships: it needs no shared library
# but the C library's (libc, libm, the loader) and no glibc symbol newer than GLIBC_2.35.
# Prints what it found; exits 1 with the reason otherwise. Used by make package and its test.
#   scripts/check-portable.sh BINARY
set -euo pipefail
bin=$1
needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
[ "$needed" = "ld-linux-x86-64.so.2 libc.so.6 libm.so.6 " ] ||
  { echo "$bin needs more than the C library: $needed" >&2; exit 1; }
newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
[ "$(printf '%s\nGLIBC_2.35\n' "$newest" | sort -V | tail -1)" = GLIBC_2.35 ] ||
  { echo "$bin uses $newest; the release supports glibc 2.35 and newer" >&2; exit 1; }
echo "$bin: needs $needed; newest glibc symbol $newest"
