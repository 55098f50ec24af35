#!/usr/bin/env bash
# The shell completions `toolwarden completions` generates (and the packages install), loaded
# by each shell for real: what bash and fish offer at a few points of a command line; zsh's
# script parsed by zsh. Usage: completions.sh TOOLWARDEN
set -euo pipefail
tw=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$tw" completions bash > "$tmp/toolwarden.bash"
"$tw" completions zsh > "$tmp/_toolwarden"
"$tw" completions fish > "$tmp/toolwarden.fish"

# bash: COMPREPLY for the words given (the last one is being completed).
offer_bash() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _toolwarden; [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$tmp/toolwarden.bash" "$@" | sort | tr '\n' ' '
}
expect_bash() {
  local want=$1; shift
  local got; got=$(offer_bash "$@")
  [ "$got" = "$want" ] || fail "bash: toolwarden ${*:2}: want [$want], got [$got]"
}
expect_bash "pins " toolwarden pi
expect_bash "accept diff list " toolwarden pins ""
expect_bash "--json " toolwarden pins list --j
expect_bash "--servers --state " toolwarden grants create ci --s
expect_bash "backup " toolwarden state ba
expect_bash "--log-format --log-level " toolwarden serve --log-
expect_bash "" toolwarden run -p p.yaml -- np   # the server's own command line: nothing offered
for c in run serve validate explain scan tools init audit approvals grants pins state version completions; do
  offer_bash toolwarden "" | grep -qw "$c" || fail "bash: subcommand $c not offered"
done
offer_bash toolwarden "" | grep -qw demo-server && fail "bash: the hidden demo-server is offered"
echo "ok: bash"

if command -v fish >/dev/null; then
  offer_fish() { fish --no-config -c "source $tmp/toolwarden.fish; complete -C '$1'" | cut -f1 | sort | tr '\n' ' '; }
  [ "$(offer_fish 'toolwarden pi')" = "pins " ] || fail "fish: toolwarden pi: $(offer_fish 'toolwarden pi')"
  [ "$(offer_fish 'toolwarden pins ')" = "accept diff list " ] || fail "fish: pins: $(offer_fish 'toolwarden pins ')"
  offer_fish 'toolwarden audit --' | grep -q -- '--decision' || fail "fish: audit flags"
  echo "ok: fish"
else
  fail "fish is not installed (scripts/install-deps.sh installs it)"
fi
if command -v zsh >/dev/null; then
  zsh -n "$tmp/_toolwarden" || fail "zsh: the script does not parse"
  grep -q "'pins:list'" "$tmp/_toolwarden" || fail "zsh: nested subcommands missing"
  echo "ok: zsh (parsed)"
else
  fail "zsh is not installed (scripts/install-deps.sh installs it)"
fi
