#!/usr/bin/env bash
# make package: the release artifacts, from the build directory given (default build/):
#   dist/toolwarden-VERSION-linux-x86_64.tar.gz  the portable binary, man page, completions,
#                                                 install.sh (docs/install.md)
#   dist/toolwarden_VERSION_amd64.deb             the same, plus the systemd unit and /etc/toolwarden
# The binary must be the portable one (TW_PORTABLE, the default build): checked here, so that
# no artifact ships a binary that needs more than the C library.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/toolwarden"
[ -x "$bin" ] || { echo "package: $bin not built (make build)" >&2; exit 1; }
grep -q '^TW_PORTABLE:BOOL=ON' "$build/CMakeCache.txt" ||
  { echo "package: $build is not a portable build (configure it with -DTW_PORTABLE=ON)" >&2; exit 1; }
scripts/check-portable.sh "$bin" > /dev/null

version=$("$bin" version | awk '{print $2}')
dist="$build/dist"
name="toolwarden-$version-linux-x86_64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$dist"
cmake --install "$build" --prefix "$stage/$name" --component runtime >/dev/null
strip "$stage/$name/bin/toolwarden"
cp packaging/install.sh "$stage/$name/install.sh"
mkdir -p "$stage/$name/share/toolwarden/service"
cp packaging/toolwarden.service packaging/toolwarden.yaml packaging/demo-policy.yaml \
  "$stage/$name/share/toolwarden/service/"
tar -C "$stage" --owner=0 --group=0 --sort=name -czf "$dist/$name.tar.gz" "$name"
echo "package: $dist/$name.tar.gz"

(cd "$build" && cpack -G DEB -D CPACK_STRIP_FILES=ON >/dev/null)
echo "package: $(ls "$dist"/toolwarden_"$version"_amd64.deb)"
