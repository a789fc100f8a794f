#!/usr/bin/env bash
# Fetches a newer containerd line from Debian with apt's own client, without touching the machine's apt setup, and
# prints the folder to put first on PATH (it holds containerd, ctr and containerd-shim-runc-v2; the host's runc stays).
#
#   scripts/containerd-line.sh trixie|sid        # containerd 1.7 (trixie) or 2.x (sid)
#   scripts/containerd-line.sh protos sid        # sid's golang-github-containerd-containerd-api-dev: prints its api/ folder
#
# Everything lives under CTRWATCH_CACHE (default /var/cache/ctrwatch), outside any clone, and is reused when present:
# a private sources list naming the mirror of /etc/apt/sources.list.d/debian.sources, its own lists and archives, each
# .deb in a folder of its own (apt/debs/<package>_<version>/) and unpacked with dpkg-deb -x under
# unpacked/<package>_<version>/. sid moves on: the newest version it serves is used, and the version is part of both
# folder names. A .deb is used only when its control fields name the package and version asked for, an unpacked
# folder only when its stamp says the same, and containerd's binaries only when they run here and report that version.
# Fails with the reason, naming the package and version, on stderr (exit 1). One run at a time per cache (flock).
set -euo pipefail

die() {
  echo "containerd-line: $*" >&2
  exit 1
}

cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}
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

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs" "$cache/unpacked" ||
  die "cannot create the cache folders under $cache"

# apt runs below without its own locking (its lists and archives are private), so two runs at once wait here instead.
exec 9>"$cache/.lock"
flock -w 600 9 || die "another containerd-line.sh has held $cache/.lock for 10 minutes"

mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n $mirror ]] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $keyring ]] || die "$keyring is missing (apt-get install debian-archive-keyring)"
sources=$apt_dir/sources.list
printf 'deb [signed-by=%s] %s trixie main\ndeb [signed-by=%s] %s sid main\n' "$keyring" "$mirror" "$keyring" "$mirror" >"$sources.new"
if cmp -s "$sources.new" "$sources"; then rm "$sources.new"; else
  mv "$sources.new" "$sources"
  rm -f "$apt_dir/lists/.updated" # another mirror: its lists are not the ones we have
fi
apt_opts=(-o "Dir::Etc::sourcelist=$sources" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)

# .debs of the earlier flat layout (apt/debs/*.deb) are never used: their folder told no package from another.
find "$apt_dir/debs" -maxdepth 1 -type f -name '*.deb' -delete

stamp=$apt_dir/lists/.updated
updated=false
update_lists() {
  if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1; then
    die "apt-get update of trixie and sid failed: $(tail -n 3 "$apt_dir/update.log" | tr '\n' ' ')"
  fi
  touch "$stamp"
  updated=true
}

# The newest version of $package that $suite serves, from the private lists.
suite_version() {
  apt-cache "${apt_opts[@]}" madison "$package" 2>/dev/null |
    awk -F'|' -v s=" $suite/main " '{ gsub(/ /, "", $2) } index($3 " ", s) { print $2; exit }'
}

# The lists are refreshed at most once a day: sid's newest version is then found, and a warm cache needs no network.
if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440) ]]; then update_lists; fi
version=$(suite_version)
if [[ -z $version ]] && [[ $updated == false ]]; then
  update_lists
  version=$(suite_version)
fi
[[ -n $version ]] || die "$suite serves no $package (lists in $apt_dir/lists)"

safe_version=${version//[:~]/_}
deb_dir=$apt_dir/debs/${package}_$safe_version
folder=$cache/unpacked/${package}_$safe_version
want="$package $version"

# Prints the one .deb in $deb_dir when its control fields are $package $version.
cached_deb() {
  local debs=("$deb_dir"/*.deb)
  [[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || return 1
  [[ $(dpkg-deb -f "${debs[0]}" Package Version 2>/dev/null | awk -F': ' '{ printf "%s%s", sep, $2; sep=" " }') == "$want" ]] ||
    return 1
  echo "${debs[0]}"
}

download() {
  rm -rf "$deb_dir" && mkdir -p "$deb_dir"
  (cd "$deb_dir" && apt-get "${apt_opts[@]}" download "$package=$version" >"$apt_dir/download.log" 2>&1)
}

# Downloads (or reuses) the .deb of $want and unpacks it into $folder.
unpack() {
  local deb
  if ! deb=$(cached_deb); then
    if ! download; then
      # The lists may be a day old and the mirror may have moved on: refresh them once and try the newest version.
      [[ $updated == true ]] && die "downloading $want from $suite failed: $(tail -n 3 "$apt_dir/download.log" | tr '\n' ' ')"
      update_lists
      version=$(suite_version)
      [[ -n $version ]] || die "$suite serves no $package (after apt-get update)"
      safe_version=${version//[:~]/_}
      deb_dir=$apt_dir/debs/${package}_$safe_version
      folder=$cache/unpacked/${package}_$safe_version
      want="$package $version"
      download || die "downloading $want from $suite failed: $(tail -n 3 "$apt_dir/download.log" | tr '\n' ' ')"
    fi
    deb=$(cached_deb) || die "the download of $want from $suite left no .deb of that package and version in $deb_dir: $(
      ls "$deb_dir" | tr '\n' ' '
    )"
  fi
  rm -rf "$folder" "$folder.partial" && mkdir -p "$folder.partial"
  dpkg-deb -x "$deb" "$folder.partial" 2>"$apt_dir/unpack.log" ||
    die "unpacking $deb ($want) failed: $(tail -n 3 "$apt_dir/unpack.log" | tr '\n' ' ')"
  echo "$want" >"$folder.partial/.complete"
  mv "$folder.partial" "$folder"
  unpacked=true
}

unpacked=false
if [[ $(cat "$folder/.complete" 2>/dev/null) != "$want" ]]; then unpack; fi

if [[ $kind == protos ]]; then
  api=$folder/usr/share/gocode/src/github.com/containerd/containerd/api
  [[ -f $api/services/events/v1/events.proto ]] || die "$want has no api/ folder with .proto files at $api"
  echo "$api"
  exit 0
fi

# The binaries must run here (they link only libc) and report the package's upstream version (1.7.24~ds1-6 → 1.7.24).
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
if [[ -n $why && $unpacked == false ]]; then
  # A cached folder that went bad (edited, truncated): unpack the .deb again once before giving up.
  unpack
  why=$(problems)
fi
[[ -z $why ]] || die "$(head -n 1 <<<"$why")"
echo "$bin"
