#!/usr/bin/env bash
# Fetches a newer containerd line from Debian with apt's own client, without touching the machine's apt setup, and
# prints the folder to put first on PATH (it holds containerd, ctr and containerd-shim-runc-v2; the host's runc stays).
#
#   scripts/containerd-line.sh trixie|sid        # containerd 1.7 (trixie) or 2.x (sid)
#   scripts/containerd-line.sh protos sid        # sid's golang-github-containerd-containerd-api-dev: prints its api/ folder
#
# Everything lives under CTRWATCH_CACHE (default /var/cache/ctrwatch), outside any clone, and is reused when present:
# a private sources list naming the mirror of /etc/apt/sources.list.d/debian.sources, its own lists and archives, and
# each package unpacked with dpkg-deb -x under unpacked/<package>_<version>/. sid moves on: the newest version it serves
# is used, and the version is part of the folder name. Fails with the reason on stderr (exit 1).
set -euo pipefail

cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}
kind=$1
if [[ $kind == protos ]]; then
  suite=${2:?usage: containerd-line.sh protos SUITE}
  package=golang-github-containerd-containerd-api-dev
else
  suite=$kind
  package=containerd
fi
case $suite in trixie | sid) ;; *)
  echo "containerd-line: unknown suite '$suite' (trixie or sid)" >&2
  exit 1
  ;;
esac

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs" "$cache/unpacked"
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then
  echo "containerd-line: no Debian mirror in /etc/apt/sources.list.d/debian.sources" >&2
  exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
sources=$apt_dir/sources.list
printf 'deb [signed-by=%s] %s trixie main\ndeb [signed-by=%s] %s sid main\n' "$keyring" "$mirror" "$keyring" "$mirror" >"$sources.new"
cmp -s "$sources.new" "$sources" 2>/dev/null && rm "$sources.new" || mv "$sources.new" "$sources"
apt_opts=(-o "Dir::Etc::sourcelist=$sources" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)

# The lists are refreshed at most once a day: sid's newest version is then found, and a warm cache needs no network.
stamp=$apt_dir/lists/.updated
if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440) ]]; then
  if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1; then
    echo "containerd-line: apt-get update of trixie and sid failed: $(tail -n 3 "$apt_dir/update.log")" >&2
    exit 1
  fi
  touch "$stamp"
fi

version=$(apt-cache "${apt_opts[@]}" madison "$package" 2>/dev/null | awk -v s="$suite/main" '$0 ~ s { print $3; exit }')
if [[ -z $version ]]; then
  echo "containerd-line: $suite serves no $package" >&2
  exit 1
fi
folder=$cache/unpacked/${package}_${version//[:~]/_}
if [[ ! -f $folder/.complete ]]; then
  deb=$(find "$apt_dir/debs" -name "${package}_*${version#*:}*.deb" -print -quit)
  if [[ -z $deb ]]; then
    if ! (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download "$package=$version" >"$apt_dir/download.log" 2>&1); then
      echo "containerd-line: downloading $package $version from $suite failed: $(tail -n 3 "$apt_dir/download.log")" >&2
      exit 1
    fi
    deb=$(find "$apt_dir/debs" -name "${package}_*.deb" -newer "$sources" -print -quit)
    deb=${deb:-$(ls -t "$apt_dir/debs/${package}"_*.deb | head -n 1)}
  fi
  rm -rf "$folder" && mkdir -p "$folder"
  if ! dpkg-deb -x "$deb" "$folder"; then
    echo "containerd-line: unpacking $deb failed" >&2
    exit 1
  fi
  touch "$folder/.complete"
fi

if [[ $kind == protos ]]; then
  echo "$folder/usr/share/gocode/src/github.com/containerd/containerd/api"
  exit 0
fi
bin=$folder/usr/bin
if ! "$bin/containerd" --version >/dev/null 2>&1; then
  echo "containerd-line: $bin/containerd ($version) does not run here: $("$bin/containerd" --version 2>&1 | head -n 1)" >&2
  exit 1
fi
echo "$bin"
