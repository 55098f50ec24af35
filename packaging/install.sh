#!/bin/sh
# Installs toolwarden from this release tarball.
#
#   ./install.sh               as root: into /usr/local; otherwise into ~/.local
#   PREFIX=/opt/tw ./install.sh
#   ./install.sh --uninstall   removes exactly what it installed (its manifest says what)
#
# The binary needs only the C library (glibc 2.35 or newer, x86-64): nothing else is installed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${PREFIX:-}" ]; then
  if [ "$(id -u)" = 0 ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
fi
manifest="$PREFIX/share/toolwarden/install-manifest"

if [ "${1:-}" = "--uninstall" ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing installed under $PREFIX ($manifest not found)" >&2; exit 1; }
  while IFS= read -r f; do rm -f "$f"; done < "$manifest"
  rm -f "$manifest"
  rmdir "$PREFIX/share/toolwarden" 2>/dev/null || true
  echo "toolwarden removed from $PREFIX"
  exit 0
fi

case "$(uname -m)" in
  x86_64) ;;
  *) echo "install.sh: this build is for x86-64 Linux, not $(uname -m)" >&2; exit 1 ;;
esac
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -z "$glibc" ]; then
  echo "install.sh: this build needs glibc 2.35 or newer; this system's C library is not glibc (musl?)" >&2
  exit 1
fi
major=${glibc%%.*}; minor=${glibc#*.}; minor=${minor%%.*}
if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 35 ]; }; then
  echo "install.sh: this build needs glibc 2.35 or newer; this system has $glibc" >&2
  exit 1
fi

# Completions where each shell looks for them: the system's directories under a system prefix,
# the user's own otherwise.
if [ "$(id -u)" = 0 ]; then
  bash_dir="$PREFIX/share/bash-completion/completions"
  zsh_dir="$PREFIX/share/zsh/site-functions"
  fish_dir="$PREFIX/share/fish/vendor_completions.d"
else
  data="${XDG_DATA_HOME:-$HOME/.local/share}"
  bash_dir="$data/bash-completion/completions"
  zsh_dir="$data/zsh/site-functions"
  fish_dir="${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions"
fi

mkdir -p "$PREFIX/share/toolwarden"
: > "$manifest.new"
put() {  # put MODE SOURCE DESTINATION
  mkdir -p "$(dirname "$3")"
  cp "$here/$2" "$3.tw-new" && chmod "$1" "$3.tw-new" && mv -f "$3.tw-new" "$3"
  echo "$3" >> "$manifest.new"
}
put 0755 bin/toolwarden "$PREFIX/bin/toolwarden"
put 0644 share/man/man1/toolwarden.1.gz "$PREFIX/share/man/man1/toolwarden.1.gz"
put 0644 share/bash-completion/completions/toolwarden "$bash_dir/toolwarden"
put 0644 share/zsh/site-functions/_toolwarden "$zsh_dir/_toolwarden"
put 0644 share/fish/vendor_completions.d/toolwarden.fish "$fish_dir/toolwarden.fish"
mv -f "$manifest.new" "$manifest"

"$PREFIX/bin/toolwarden" version
echo "installed into $PREFIX (./install.sh --uninstall removes it)"
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "note: $PREFIX/bin is not on your PATH; add it, e.g. export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
echo "next: toolwarden init    (finds your MCP clients' servers; --apply puts toolwarden in front)"
