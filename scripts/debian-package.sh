#!/usr/bin/env bash
# Fetches one Debian package of another suite with apt's own client, without touching the machine's apt setup or
# installing anything, and prints the folder it is unpacked in (the package's files below it: usr/bin/…).
#
#   scripts/debian-package.sh PACKAGE SUITE     # e.g. prometheus sid → /var/cache/ctrwatch/unpacked/prometheus_3.5.3+ds1-6
#   "$(scripts/debian-package.sh promtool sid)"/usr/bin/promtool --version      # sid ships promtool in its own package
#   "$(scripts/debian-package.sh victoria-metrics sid)"/usr/bin/victoria-metrics -version
#
# Nothing but the package itself is fetched: its dependencies are not (use it for binaries that link only libc, as
# Go programs do). Everything lives under CTRWATCH_CACHE (default /var/cache/ctrwatch), outside any clone, and is
# reused when present: for each suite a private sources list naming the mirror of
# /etc/apt/sources.list.d/debian.sources (main only) with its own lists and archives (apt-SUITE/), each .deb in a
# folder of its own (apt-SUITE/debs/<package>_<version>/), unpacked with dpkg-deb -x under
# unpacked/<package>_<version>/ (the layout scripts/containerd-line.sh uses, whose lock it shares). A moving suite
# (sid) moves on: the newest version it serves is used, and the version is part of both folder names; the lists are
# refreshed at most once a day, and once more when the download fails. A .deb is used only when its control fields
# name the package and version asked for, an unpacked folder only when its stamp (.complete) says the same.
# Fails with the reason, naming the package and suite, on stderr (exit 1). One run at a time per cache (flock).
set -euo pipefail

die() {
  echo "debian-package: $*" >&2
  exit 1
}

package=${1:-}
suite=${2:-}
[[ $package =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "usage: debian-package.sh PACKAGE SUITE (bad package name '$package')"
[[ $suite =~ ^[a-z]+(-[a-z]+)?$ ]] || die "usage: debian-package.sh PACKAGE SUITE (bad suite '$suite')"

cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}
apt_dir=$cache/apt-$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs" "$cache/unpacked" ||
  die "cannot create the cache folders under $cache"

# apt runs below without its own locking (its lists and archives are private), so two runs at once wait here instead.
exec 9>"$cache/.lock"
flock -w 600 9 || die "another run has held $cache/.lock for 10 minutes"

mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then
  mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
    /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $keyring ]] || die "$keyring is missing (apt-get install debian-archive-keyring)"
sources=$apt_dir/sources.list
stamp=$apt_dir/lists/.updated
printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" >"$sources.new"
if cmp -s "$sources.new" "$sources"; then rm "$sources.new"; else
  mv "$sources.new" "$sources"
  rm -f "$stamp" # another mirror: its lists are not the ones we have
fi
apt_opts=(-o "Dir::Etc::sourcelist=$sources" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)

updated=false
update_lists() {
  if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1; then
    die "apt-get update of $suite failed: $(tail -n 3 "$apt_dir/update.log" | tr '\n' ' ')"
  fi
  touch "$stamp"
  updated=true
}

# The newest version of $package that $suite serves, from the private lists.
suite_version() {
  apt-cache "${apt_opts[@]}" madison "$package" 2>/dev/null |
    awk -F'|' -v s=" $suite/main " '{ gsub(/ /, "", $2) } index($3 " ", s) { print $2; exit }'
}

# Sets version, deb_dir, folder and want from the lists.
choose() {
  version=$(suite_version)
  [[ -n $version ]] || return 1
  local safe_version=${version//[:~]/_}
  deb_dir=$apt_dir/debs/${package}_$safe_version
  folder=$cache/unpacked/${package}_$safe_version
  want="$package $version"
}

if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440) ]]; then update_lists; fi
if ! choose; then
  [[ $updated == false ]] || die "$suite serves no $package (lists in $apt_dir/lists)"
  update_lists
  choose || die "$suite serves no $package (lists in $apt_dir/lists, just updated)"
fi

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

if [[ $(cat "$folder/.complete" 2>/dev/null) != "$want" ]]; then
  if ! deb=$(cached_deb); then
    if ! download; then
      # The lists may be a day old and the mirror may have moved on: refresh them once and take the newest version.
      [[ $updated == true ]] && die "downloading $want from $suite failed: $(tail -n 3 "$apt_dir/download.log" | tr '\n' ' ')"
      update_lists
      choose || die "$suite serves no $package (after apt-get update)"
      download || die "downloading $want from $suite failed: $(tail -n 3 "$apt_dir/download.log" | tr '\n' ' ')"
    fi
    deb=$(cached_deb) || die "the download of $want from $suite left no .deb of that package and version in $deb_dir"
  fi
  if [[ $(cat "$folder/.complete" 2>/dev/null) != "$want" ]]; then
    rm -rf "$folder" "$folder.partial" && mkdir -p "$folder.partial"
    dpkg-deb -x "$deb" "$folder.partial" 2>"$apt_dir/unpack.log" ||
      die "unpacking $deb ($want) failed: $(tail -n 3 "$apt_dir/unpack.log" | tr '\n' ' ')"
    echo "$want" >"$folder.partial/.complete"
    mv "$folder.partial" "$folder"
  fi
fi
echo "$folder"
