#!/usr/bin/env bash
# Builds (or reuses) the cgroup v2 guest's kernel and base initramfs and prints the folder holding them:
#   vmlinuz        Debian bookworm's linux-image-<abi>-amd64 kernel, from its .deb (apt-get download, dpkg-deb -x)
#   initrd.cpio    a small newc initramfs: the static busybox, the kernel modules the guest needs (virtio disks,
#                  ext4, overlayfs: all modules in Debian's kernel) and scripts/guest/init, which mounts the root disk
#                  and switch_roots into it (runc's pivot_root cannot leave an initramfs root)
#   root.ext4      the root disk (qemu opens it with snapshot=on, so it stays as built): busybox, containerd 1.6,
#                  ctr, containerd-shim-runc-v2, runc, GNU tar/mount/umount, Node, every library `ldd` names for
#                  them, systemd (PID 1 of the systemd driver's boot) and scripts/guest/stage2 with its units
#   key            what the folder was built from (package versions, file digests)
#
#   scripts/guest/build.sh [NODE_BINARY]   # default: the node first on PATH
#
# Everything lives under CTRWATCH_CACHE (default /var/cache/ctrwatch)/guest, outside any clone: the kernel .deb and its
# unpacked files are kept per package version; a base folder per key, so a warm cache costs a few digests. The
# project itself (its code and node_modules) is not in here: scripts/guest/run.sh packs it at every run.
# Fails with the reason on stderr (exit 1). One build at a time per cache (flock).
set -euo pipefail

die() {
  echo "guest-build: $*" >&2
  exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}/guest
node_bin=${1:-$(command -v node || true)}
[[ -n $node_bin && -x $node_bin ]] || die "no node binary to put in the guest (give its path)"
node_bin=$(realpath "$node_bin")

mkdir -p "$cache/debs" "$cache/kernel" || die "cannot create $cache"
exec 9>"$cache/.lock"
flock -w 900 9 || die "another guest build has held $cache/.lock for 15 minutes"

# The modules the guest loads, in load order (dependencies first, as their .modinfo `depends=` name them).
modules=(
  drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
  lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4 fs/overlayfs/overlay
)

# --- the kernel: the ABI package linux-image-amd64 depends on now, else the newest one cached -----------------------
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }' || true)
kernel_version=""
if [[ -n $kernel_package ]]; then
  kernel_version=$(apt-cache policy "$kernel_package" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
fi
if [[ -z $kernel_package || -z $kernel_version || $kernel_version == "(none)" ]]; then
  # No apt lists (or no network to have fetched them): a kernel unpacked earlier does as well.
  latest=$(ls -1d "$cache/kernel"/*/ 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $latest ]] || die "apt knows no linux-image-amd64 (run apt-get update) and no kernel is cached in $cache/kernel"
  kernel_dir=${latest%/}
else
  kernel_dir=$cache/kernel/${kernel_package}_${kernel_version//[:~]/_}
  # The stamp names the package and the modules taken out of it: another module list unpacks it again.
  if [[ $(cat "$kernel_dir/.complete" 2>/dev/null) != "$kernel_package $kernel_version ${modules[*]}" ]]; then
    deb_dir=$cache/debs/${kernel_package}_${kernel_version//[:~]/_}
    debs=("$deb_dir"/*.deb)
    if [[ ! -f ${debs[0]} ]]; then
      rm -rf "$deb_dir" && mkdir -p "$deb_dir"
      fetch() { (cd "$deb_dir" && apt-get download "$kernel_package=$kernel_version" >"$cache/download.log" 2>&1); }
      if ! fetch; then
        # Lists older than the mirror name a version it no longer serves: under CI, refresh them once and retry.
        [[ ${CI:-} == true ]] && apt-get update -qq >/dev/null 2>&1 && fetch ||
          die "apt-get download $kernel_package=$kernel_version failed (apt-get update?): $(tail -n 3 "$cache/download.log" | tr '\n' ' ')"
      fi
      debs=("$deb_dir"/*.deb)
    fi
    [[ $(dpkg-deb -f "${debs[0]}" Package Version | awk -F': ' '{ printf "%s%s", s, $2; s=" " }') == "$kernel_package $kernel_version" ]] ||
      die "${debs[0]} is not $kernel_package $kernel_version"
    rm -rf "$kernel_dir" "$kernel_dir.partial" && mkdir -p "$kernel_dir.partial"
    # Only the kernel image, its config and a dozen modules are needed out of its ~400 MB of modules.
    patterns=('./boot/vmlinuz-*' './boot/config-*')
    for module in "${modules[@]}"; do patterns+=("*/$module.ko"); done
    dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$kernel_dir.partial" --wildcards "${patterns[@]}" ||
      die "unpacking ${debs[0]} failed"
    echo "$kernel_package $kernel_version ${modules[*]}" >"$kernel_dir.partial/.complete"
    mv "$kernel_dir.partial" "$kernel_dir"
  fi
fi
vmlinuz=$(ls -1 "$kernel_dir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[[ -f $vmlinuz ]] || die "$kernel_dir lacks boot/vmlinuz-*"
release=${vmlinuz##*/vmlinuz-}
module_files=()
for module in "${modules[@]}"; do
  file=$(find "$kernel_dir/lib/modules/$release" -path "*/kernel/$module.ko" | head -n 1)
  [[ -n $file ]] || die "$kernel_dir has no $module.ko"
  module_files+=("$file")
done

# --- what goes into the root disk -----------------------------------------------------------------------------------
find_bin() { command -v "$1" || die "$1 is not installed (apt-get install ${2:-$1})"; }
busybox=/bin/busybox
[[ -x $busybox ]] && { ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic' ||
  die "/bin/busybox is not the static busybox (apt-get install busybox-static)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is missing (apt-get install e2fsprogs)"
binaries=(
  "$(find_bin containerd)" "$(find_bin ctr containerd)" "$(find_bin containerd-shim-runc-v2 containerd)"
  "$(find_bin runc)" "$(find_bin tar)" "$(find_bin mount)" "$(find_bin umount mount)" "$node_bin"
)
# systemd as PID 1 for the systemd cgroup driver's boot (scripts/guest/run.sh boots the guest twice).
systemd_bin=/lib/systemd/systemd
[[ -x $systemd_bin ]] || die "$systemd_bin is missing (apt-get install systemd; it need not run here)"
binaries+=("$systemd_bin")
versions=$(dpkg-query -W -f='${Package} ${Version}\n' containerd runc busybox-static tar mount systemd 2>/dev/null | sort)
key=$(
  {
    echo "kernel $(cat "$kernel_dir/.complete")"
    echo "$versions"
    # The binaries by size and modification time (a digest of 250 MB costs seconds per run), the scripts by digest.
    stat -L -c '%n %s %Y' "${binaries[@]}" "$busybox"
    sha256sum "$here/init" "$here/stage2" "$here/build.sh" "$here/ctrwatch-guest.target" "$here/ctrwatch-guest.service"
  } | sha256sum | cut -c1-16
)
out=$cache/base-$key
if [[ -f $out/.complete ]]; then
  touch "$out" # its modification time is its last use: what the clean-up below goes by
  echo "$out"
  exit 0
fi

rm -rf "$out.partial" && mkdir -p "$out.partial"
root=$out.partial/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,proc,sys,dev,tmp,run,root,etc,var/lib,guest,project}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

# Copies a file to the same path in the guest (merged /usr, as on the host); symlinks are followed.
place() {
  local src=$1 dest=${2:-}
  if [[ -z $dest ]]; then
    dest=$(realpath -s "$src")
    dest=/usr${dest#/usr}
  fi
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
}

for binary in "${binaries[@]}"; do
  case $binary in
  "$node_bin") place "$binary" /usr/bin/node ;;
  "$systemd_bin") place "$binary" ;;
  *) place "$binary" "/usr/bin/$(basename "$binary")" ;;
  esac
  # ldd prints "name => /path (addr)" and the loader as "/lib64/ld-linux-x86-64.so.2 (addr)".
  while read -r lib; do place "$lib"; done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
done
# Node's debug information is most of its 100 MB; the guest reads the binary from its disk, so it is dropped.
if command -v strip >/dev/null; then strip --strip-debug "$root/usr/bin/node" 2>/dev/null || true; fi
# busybox, and each of its applets as a link where no real binary of that name was placed.
links() {
  local into=$1
  cp "$busybox" "$into/usr/bin/busybox"
  while read -r applet; do
    local name
    name=$(basename "$applet")
    [[ -e $into/usr/bin/$name || -e $into/usr/sbin/$name ]] || ln -s /usr/bin/busybox "$into/usr/bin/$name"
  done < <("$busybox" --list-full)
}
links "$root"
cp "$here/stage2" "$root/guest/stage2"
chmod 755 "$root/guest/stage2"
# The systemd boot: PID 1 starts ctrwatch-guest.target, whose service runs stage2 in its systemd mode. Accounting on
# for every controller, so that systemd keeps them enabled for the slices runc's systemd driver asks for.
mkdir -p "$root/etc/systemd/system"
cp "$here/ctrwatch-guest.target" "$here/ctrwatch-guest.service" "$root/etc/systemd/system/"
printf '[Manager]\nDefaultCPUAccounting=yes\nDefaultMemoryAccounting=yes\nDefaultTasksAccounting=yes\nDefaultIOAccounting=yes\nShowStatus=no\n' \
  >"$root/etc/systemd/system.conf"
: >"$root/etc/machine-id"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '127.0.0.1 localhost ctrwatch-guest\n::1 localhost\n' >"$root/etc/hosts"
printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
: >"$root/etc/resolv.conf"
echo ctrwatch-guest >"$root/etc/hostname"
# Room for containerd's root, the image and the containers' layers besides the files (the disk is sparse).
size_mb=$(($(du -sm "$root" | cut -f1) + 1024))
truncate -s "${size_mb}M" "$out.partial/root.ext4"
mkfs.ext4 -q -F -L ctrwatch-root -d "$root" "$out.partial/root.ext4" 2>"$out.partial/mkfs.log" ||
  die "mkfs.ext4 of the root disk failed: $(tail -n 3 "$out.partial/mkfs.log" | tr '\n' ' ')"
rm -rf "$root" "$out.partial/mkfs.log"

# The initramfs: busybox, the modules, /init.
initrd=$out.partial/initrd
mkdir -p "$initrd"/{usr/bin,usr/sbin,proc,sys,dev,newroot,modules}
ln -s usr/bin "$initrd/bin"
ln -s usr/sbin "$initrd/sbin"
links "$initrd"
for file in "${module_files[@]}"; do cp "$file" "$initrd/modules/"; done
printf '%s\n' "${modules[@]##*/}" >"$initrd/modules/order"
cp "$here/init" "$initrd/init"
chmod 755 "$initrd/init"
(cd "$initrd" && find . -mindepth 1 | "$busybox" cpio -o -H newc >"$out.partial/initrd.cpio" 2>/dev/null) ||
  die "packing the initramfs failed"
rm -rf "$initrd"
cp "$vmlinuz" "$out.partial/vmlinuz"
{
  echo "kernel $(cat "$kernel_dir/.complete") ($release)"
  echo "$versions"
  echo "node $("$node_bin" --version) ($node_bin)"
} >"$out.partial/key"
touch "$out.partial/.complete"
rm -rf "$out" && mv "$out.partial" "$out"
# Bases built from something else (another node, another kernel) and unused for a day are removed.
find "$cache" -maxdepth 1 -name 'base-*' -type d ! -name "base-$key" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
echo "$out"
