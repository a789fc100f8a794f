#!/usr/bin/env bash
# Fetches a newer containerd line from Debian (scripts/debian-package.sh: apt's own client, a private sources list,
# cached under CTRWATCH_CACHE, default /var/cache/ctrwatch) and prints the folder to put first on PATH: it holds
# containerd, ctr and containerd-shim-runc-v2 (the host's runc stays).
#
#   scripts/containerd-line.sh trixie|sid        # containerd 1.7 (trixie) or 2.x (sid)
#   scripts/containerd-line.sh protos sid        # sid's golang-github-containerd-containerd-api-dev: prints its api/ folder
#
# sid moves on: the newest version it serves is used. containerd's binaries are used only when they run here and
# report the package's version; a cached folder that does not is unpacked again once. Fails with the reason, naming
# the package and version, on stderr (exit 1).
set -euo pipefail

die() {
  echo "containerd-line: $*" >&2
  exit 1
}

kind=${1:-}
if [[ $kind == protos ]]; then
  suite=${2:-}
  package=golang-github-containerd-containerd-api-dev
else
  suite=$kind
  package=containerd
fi
case $suite in
trixie | sid) ;;
*) die "usage: containerd-line.sh trixie|sid, or containerd-line.sh protos sid (unknown suite '$suite')" ;;
esac

fetch=$(dirname "$0")/debian-package.sh
folder=$("$fetch" "$package" "$suite") || exit 1
want=$(cat "$folder/.complete") # "<package> <version>", written by debian-package.sh

if [[ $kind == protos ]]; then
  api=$folder/usr/share/gocode/src/github.com/containerd/containerd/api
  [[ -f $api/services/events/v1/events.proto ]] || die "$want has no api/ folder with .proto files at $api"
  echo "$api"
  exit 0
fi

# The binaries must run here (they link only libc) and report the package's upstream version (1.7.24~ds1-6 → 1.7.24).
version=${want#* }
upstream=${version#*:}
upstream=${upstream%-*}
upstream=${upstream%%[~+]*}
bin=$folder/usr/bin
# Prints why $bin/$1 (run with the rest as arguments) is not usable, or nothing.
problem() {
  local name=$1 out
  shift
  [[ -x $bin/$name ]] || {
    echo "$want has no $bin/$name"
    return
  }
  if ! out=$("$bin/$name" "$@" 2>&1); then
    echo "$bin/$name ($want) does not run here: $(head -n 2 <<<"$out" | tr '\n' ' ')"
  elif ! grep -qF "$upstream" <<<"$out"; then
    echo "$bin/$name ($want) reports another version than $upstream: $(head -n 2 <<<"$out" | tr '\n' ' ')"
  fi
}
problems() { problem containerd --version; problem ctr --version; problem containerd-shim-runc-v2 -v; }
why=$(problems)
if [[ -n $why ]]; then
  # A cached folder that went bad (edited, truncated): unpack the .deb again once before giving up.
  rm -f "$folder/.complete"
  folder=$("$fetch" "$package" "$suite") || exit 1
  why=$(problems)
fi
[[ -z $why ]] || die "$(head -n 1 <<<"$why")"
echo "$bin"
