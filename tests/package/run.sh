#!/usr/bin/env bash
# The release artifacts (make package) where a new user has them: a minimal Debian 12 root
# filesystem (debootstrap --variant=minbase, built from Debian's archive by this test and kept
# under BUILD/package-test) with no compiler, no development package and none of the libraries
# toolwarden is built from. In it:
#   1. the tarball installs with install.sh, runs (`toolwarden demo`: every decision checked),
#      and a server that Claude Code added is wrapped by `toolwarden init --apply` — the
#      README's two commands — and reported Connected by `claude mcp list` (the real CLI, from
#      npm), then restored by `init --undo`; install.sh --uninstall removes every file;
#   2. the .deb installs (system user, /etc/toolwarden, the unit), the unit's ExecStart runs as
#      the unit's user and serves /healthz, no admin token reaches the journal, and
#      `dpkg --purge` leaves nothing behind; the unit passes systemd-analyze verify.
# Usage: tests/package/run.sh BUILD_DIR. Exit 77 (a visible skip in ctest) without root,
# debootstrap or a reachable Debian archive.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (chroot, mount)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (scripts/install-deps.sh installs it)"
tarball=$(ls "$build"/dist/toolwarden-*-linux-x86_64.tar.gz 2>/dev/null | head -1)
deb=$(ls "$build"/dist/toolwarden_*_amd64.deb 2>/dev/null | head -1)
[ -n "$tarball" ] && [ -n "$deb" ] || fail "no artifacts in $build/dist: run make package"

step "the portable binary needs the C library only, glibc 2.35 or older symbols"
bin="$build/toolwarden"
"$src/scripts/check-portable.sh" "$bin" || fail "not the portable binary"

step "systemd-analyze verify the unit"
if command -v systemd-analyze >/dev/null; then
  unit_dir=$(mktemp -d)
  # The unit names /usr/bin/toolwarden, which this machine need not have: the built binary
  # stands in for it; everything else is verified as shipped.
  sed "s|/usr/bin/toolwarden|$bin|" "$src/packaging/toolwarden.service" > "$unit_dir/toolwarden.service"
  systemd-analyze verify --man=no "$unit_dir/toolwarden.service" || fail "systemd-analyze verify"
  rm -rf "$unit_dir"
  echo "ok"
else
  fail "systemd-analyze is not installed (package systemd)"
fi

cache="$build/package-test"
rootfs_tar="$cache/minbase-bookworm.tar"
mkdir -p "$cache"
if [ ! -f "$rootfs_tar" ]; then
  step "debootstrap --variant=minbase bookworm (once; kept in $rootfs_tar)"
  mirror=${TW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  tmp_root=$(mktemp -d)
  if ! debootstrap --variant=minbase bookworm "$tmp_root" "$mirror" > "$cache/debootstrap.log" 2>&1; then
    tail -5 "$cache/debootstrap.log"
    rm -rf "$tmp_root"
    if ! getent hosts "$(echo "$mirror" | sed 's|.*://||; s|/.*||')" >/dev/null; then
      skip "the Debian archive $mirror cannot be reached"
    fi
    fail "debootstrap failed ($cache/debootstrap.log)"
  fi
  tar -C "$tmp_root" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$tmp_root"
fi

root=$(mktemp -d /tmp/tw-minbase.XXXXXX)
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$rootfs_tar"
chmod 755 "$root"  # the system's root directory (mktemp's is private): the service user walks it
mount -t proc proc "$root/proc" || skip "cannot mount /proc in the root filesystem (needs CAP_SYS_ADMIN)"
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 bash -c "$1"; }

step "the root filesystem has no compiler, no -dev package, none of toolwarden's libraries"
in_root '! command -v cc && ! command -v g++ && ! dpkg -l | grep -q -- "-dev "' || fail "not minimal"
in_root '! ls /usr/lib/x86_64-linux-gnu | grep -E "libyaml-cpp|libboost|libre2|libhiredis|libspdlog|libfmt|libsqlite3|libssl"' ||
  fail "a library toolwarden uses is installed"
in_root 'cat /etc/debian_version; getconf GNU_LIBC_VERSION'

step "tarball: install.sh, toolwarden demo"
cp "$tarball" "$root/root/"
in_root "cd /root && tar xzf $(basename "$tarball") && ./$(basename "$tarball" .tar.gz)/install.sh" | tee "$cache/install.log"
grep -q "installed into /usr/local" "$cache/install.log" || fail "install.sh"
in_root 'toolwarden demo > /root/demo.log 2>&1' || { cat "$root/root/demo.log"; fail "toolwarden demo"; }
in_root 'test -f /usr/local/share/man/man1/toolwarden.1.gz && test -f /usr/local/share/bash-completion/completions/toolwarden'
echo "ok"

modules="$src/tests/node/node_modules"
claude="$modules/@anthropic-ai/claude-code-linux-x64/claude"
if [ -x "$claude" ] && [ -d "$modules/@modelcontextprotocol/server-everything" ] && command -v node >/dev/null; then
  step "Claude Code adds a server; toolwarden init --apply wraps it; claude mcp list connects"
  # What the user already had: Node.js, an MCP server from npm, Claude Code.
  cp "$(command -v node)" "$root/usr/local/bin/node"
  mkdir -p "$root/opt/mcp"
  tar -C "$src/tests/node" --exclude='node_modules/@anthropic-ai' --exclude='node_modules/node' \
    --exclude='node_modules/playwright-core' -cf - node_modules | tar -C "$root/opt/mcp" -xf -
  cp "$claude" "$root/usr/local/bin/claude"
  server=/opt/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js
  in_root "mkdir -p /root/project && cd /root/project && claude mcp add --scope user everything -- node $server stdio" >/dev/null
  in_root 'cd /root/project && claude mcp list' > "$cache/claude-list.log" 2>&1 || true
  grep -Eq "^everything: node $server stdio .*Connected" "$cache/claude-list.log" ||
    { cat "$cache/claude-list.log"; fail "the server does not connect before init"; }
  # The README's second command (the first installed the tarball).
  in_root 'toolwarden init --apply' > "$cache/init.log" 2>&1 || { cat "$cache/init.log"; fail "init --apply"; }
  in_root 'cd /root/project && claude mcp list' > "$cache/claude-list.log" 2>&1 || true
  cat "$cache/claude-list.log"
  grep -Eq '^everything: /usr/local/bin/toolwarden run .*Connected' "$cache/claude-list.log" ||
    { cat "$cache/init.log" "$root/root/.claude.json"; fail "claude mcp list does not report the wrapped server as Connected"; }
  # What init wrote is a valid serve config too.
  in_root 'toolwarden validate -c /root/.config/toolwarden/toolwarden.yaml' > /dev/null ||
    fail "the toolwarden.yaml init wrote does not validate"
  in_root 'toolwarden init --undo' > /dev/null
  in_root 'cd /root/project && claude mcp list' > "$cache/claude-list.log" 2>&1 || true
  grep -Eq "^everything: node $server stdio .*Connected" "$cache/claude-list.log" ||
    { cat "$cache/claude-list.log"; fail "init --undo did not restore the server"; }
  echo "ok"
else
  echo "SKIPPED (visible): Node.js, server-everything or the Claude Code CLI is missing (npm ci in tests/node)"
fi

in_root "cd /root/$(basename "$tarball" .tar.gz) && ./install.sh --uninstall" > /dev/null
in_root '! test -e /usr/local/bin/toolwarden && ! test -e /usr/local/share/man/man1/toolwarden.1.gz && ! test -e /usr/local/share/toolwarden' ||
  fail "install.sh --uninstall left files"
echo "ok: uninstalled"

step "deb: install, run the unit's command as its user, purge"
snapshot() { in_root 'find /usr /etc /var/lib /opt -xdev -path /var/lib/dpkg -prune -o -path /var/lib/apt -prune -o -print 2>/dev/null | sort'; }
snapshot > "$cache/before.txt"
cp "$deb" "$root/root/"
in_root "dpkg -i /root/$(basename "$deb")" > /dev/null
in_root 'getent passwd toolwarden && test -f /etc/toolwarden/toolwarden.yaml && test -f /usr/lib/systemd/system/toolwarden.service'
exec_start=$(sed -n 's/^ExecStart=//p' "$root/usr/lib/systemd/system/toolwarden.service")
user=$(sed -n 's/^User=//p' "$root/usr/lib/systemd/system/toolwarden.service")

# The journal as systemd connects it: JOURNAL_STREAM names the stream stderr is.
in_root ": > /var/lib/toolwarden/journal && chown $user /var/lib/toolwarden/journal"
in_root "cd /var/lib/toolwarden && JOURNAL_STREAM=\$(stat -c %d:%i journal) setpriv --reuid=$user --regid=$user --init-groups $exec_start --listen 127.0.0.1:0 >/dev/null 2>>journal </dev/null & echo \$! > /root/serve.pid"
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/mcp.*|\1|p' "$root/var/lib/toolwarden/journal" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$root/var/lib/toolwarden/journal"; fail "the unit's command did not start"; }
health=$(in_root "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3; cat <&3")
echo "$health" | head -1 | grep -q "200" || fail "/healthz: $health"
in_root 'kill $(cat /root/serve.pid)'
for _ in $(seq 1 200); do in_root 'kill -0 $(cat /root/serve.pid) 2>/dev/null' || break; sleep 0.05; done
! grep -q 'twa_' "$root/var/lib/toolwarden/journal" || fail "the admin token reached the journal"
grep -q 'not written to the journal' "$root/var/lib/toolwarden/journal" || fail "no word on the admin token"
# What the journal line says to do (docs/install.md): the service's user makes a token it shows.
in_root "cd /var/lib/toolwarden && setpriv --reuid=$user --regid=$user --init-groups /usr/bin/toolwarden admin reset-token -c /etc/toolwarden/toolwarden.yaml" |
  grep -q 'twa_' || fail "admin reset-token as $user printed no token"
in_root "stat -c %U /var/lib/toolwarden/state.db" | grep -qx "$user" || fail "state not owned by $user"
echo "ok: served /healthz on port $port as $user"
in_root 'dpkg --purge toolwarden' > /dev/null
in_root '! dpkg -s toolwarden 2>/dev/null | grep -q "Status: install"' || fail "still installed"
snapshot > "$cache/after.txt"
left=$(comm -13 "$cache/before.txt" "$cache/after.txt" | grep -v -E '^/var/lib/systemd|^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$' || true)
[ -z "$left" ] || fail "purge left: $left"
echo "ok: purged, nothing left"
echo "PASS"
