#!/usr/bin/env bash
# `make demo`: toolwarden in front of its bundled demo server, with a sample policy.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/toolwarden demo
