#!/usr/bin/env bash
# Runs the cgroup v2 tests (test/guest/, see docs/cgroup-v2.md) in a qemu guest and prints their TAP on stdout, one
# line per guest test as ava reports it inside, then timing comments; progress goes to stderr. Exit 0 when every guest
# test passed (or the guest was skipped), 1 otherwise.
#
#   scripts/guest/run.sh                      # NODE: the node first on PATH goes into the guest
#   CTRWATCH_GUEST_ACCEL=tcg scripts/guest/run.sh
#
# Environment: CTRWATCH_CACHE (default /var/cache/ctrwatch; the guest's parts are cached in its guest/ folder),
# CTRWATCH_GUEST_ACCEL auto|kvm|tcg (auto: KVM when /dev/kvm works, which a boot marker proves within
# CTRWATCH_GUEST_KVM_PROBE_S seconds (default 20), else TCG), CTRWATCH_GUEST_TIMEOUT_S (per boot, default 480),
# CTRWATCH_GUEST_STAGE_S (the whole run, build and both boots included, default 660: CI's cost stays under 12
# minutes; when it runs out, qemu is stopped and a `not ok` line says what was going on), CTRWATCH_GUEST_MEMORY_MB
# (default 3072), CTRWATCH_GUEST_KEEP=1 keeps the run folder (console log, TAP, qemu's own log).
# Where qemu cannot run the guest, one TAP line says why: `# SKIP` normally, `not ok` under CI=true.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/scripts/guest
cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}/guest
accel=${CTRWATCH_GUEST_ACCEL:-auto}
timeout_s=${CTRWATCH_GUEST_TIMEOUT_S:-480}
probe_s=${CTRWATCH_GUEST_KVM_PROBE_S:-20}
memory_mb=${CTRWATCH_GUEST_MEMORY_MB:-3072}
stage_s=${CTRWATCH_GUEST_STAGE_S:-660}
start=$SECONDS
stage_deadline=$((start + stage_s))
doing="starting"

log() { echo "guest: $*" >&2; }

# Seconds left before the stage's deadline (at least 1: `timeout 0` would mean no timeout).
left() {
  local s=$((stage_deadline - SECONDS))
  echo $((s > 0 ? s : 1))
}

# The stage ran out of time: one failing line that says what it was doing (qemu, if running, is stopped on exit).
over_time() {
  echo "TAP version 13"
  echo "not ok 1 - cgroup v2 guest: the stage's ${stage_s} s (CTRWATCH_GUEST_STAGE_S) ran out after $((SECONDS - start)) s while ${doing}"
  echo "1..1"
  exit 1
}
check_time() { ((SECONDS < stage_deadline)) || over_time; }

# One TAP line for a guest that could not run: a failure under CI=true, a skip elsewhere.
unavailable() {
  echo "TAP version 13"
  if [[ ${CI:-} == true ]]; then
    echo "not ok 1 - cgroup v2 guest: $1"
    echo "1..1"
    exit 1
  fi
  echo "ok 1 - cgroup v2 guest # SKIP $1"
  echo "1..1"
  exit 0
}

[[ $(id -u) == 0 ]] || unavailable "needs root (the guest's parts are built from Debian packages into $cache)"
# What the guest is built with, by the file that tells whether its package is there. Under CI=true a missing one is
# installed (qemu-system-x86 from bookworm); elsewhere the guest is skipped with the command that would install it.
declare -A needs=([qemu-system-x86_64]=qemu-system-x86 [/bin/busybox]=busybox-static [mkfs.ext4]=e2fsprogs
  [/lib/systemd/systemd]=systemd [containerd]=containerd [runc]=runc)
missing=()
for file in "${!needs[@]}"; do
  if [[ $file == /* ]]; then [[ -x $file ]] || missing+=("${needs[$file]}"); else command -v "$file" >/dev/null || missing+=("${needs[$file]}"); fi
done
if ((${#missing[@]} > 0)); then
  if [[ ${CI:-} == true ]]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      unavailable "missing ${missing[*]}, and apt-get install ${missing[*]} failed"
  else
    unavailable "missing ${missing[*]} (apt-get install ${missing[*]})"
  fi
fi

node_bin=$(command -v node) || unavailable "no node on PATH to put in the guest"
[[ -d $repo/node_modules/ava ]] || unavailable "node_modules is missing (npm ci)"
mkdir -p "$cache" || unavailable "cannot create $cache"
# build.sh (its wait for another run's build included) gets what is left of the stage.
doing="building the guest's base (scripts/guest/build.sh, its wait for the cache's lock included)"
build_err=$(mktemp)
base=$(timeout -k 5 "$(left)" "$here/build.sh" "$node_bin" 2>"$build_err")
build_status=$?
if ((build_status != 0)); then
  reason=$(cat "$build_err")
  rm -f "$build_err"
  ((build_status == 124 || build_status == 137)) && over_time # timeout's own statuses
  unavailable "${reason:-scripts/guest/build.sh failed}"
fi
rm -f "$build_err"
log "base: $base ($(tr '\n' ';' <"$base/key"))"

work=$(mktemp -d /tmp/ctrwatch-guest-XXXXXX)
qemu_pid=""
cleanup() {
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
  if [[ ${CTRWATCH_GUEST_KEEP:-} == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Makes an ext4 disk image $2 holding the folder $1 (sparse; room to spare for what the guest writes).
make_disk() {
  local size_mb=$(($(du -sm "$1" | cut -f1) * 13 / 10 + 256))
  rm -f "$2" && truncate -s "${size_mb}M" "$2" &&
    mkfs.ext4 -q -F -i 4096 -L "$3" -d "$1" "$2" 2>"$work/mkfs.log" ||
    unavailable "mkfs.ext4 of the $3 disk failed: $(tail -n 3 "$work/mkfs.log" | tr '\n' ' ')"
}

# node_modules, without what only the host uses (linters, the type checker, the browser driver), is a disk of its
# own, cached per installed lock file: the guest mounts it at /project/node_modules.
deps_key=$( (cat "$repo/node_modules/.package-lock.json" 2>/dev/null || cat "$repo/package-lock.json") | sha256sum | cut -c1-16)
deps_disk=$cache/deps-$deps_key.ext4
check_time
doing="packing the disks"
if [[ ! -f $deps_disk ]]; then
  mkdir -p "$work/deps/node_modules"
  tar -C "$repo" -cf - --exclude=node_modules/@biomejs --exclude=node_modules/@typescript \
    --exclude=node_modules/typescript --exclude=node_modules/playwright-core --exclude='node_modules/.cache' \
    node_modules | tar -C "$work/deps" -xf - || unavailable "copying node_modules onto the guest's disk failed"
  make_disk "$work/deps/node_modules" "$work/deps.ext4" ctrwatch-deps
  mv "$work/deps.ext4" "$deps_disk"
  rm -rf "$work/deps"
  find "$cache" -maxdepth 1 -name 'deps-*.ext4' ! -name "deps-$deps_key.ext4" -mmin +1440 -delete 2>/dev/null || true
  log "node_modules disk built ($deps_disk) in $((SECONDS - start)) s"
fi

# The project as the guest sees it at /project, a disk made at every run: its code and protos, the TypeScript compiled
# to JavaScript beside it (the guest runs plain node, no tsx: see test/guest/ava.config.mjs), .guest-env.
stage=$work/project
mkdir -p "$stage/node_modules"
tar -C "$repo" -cf - package.json tsconfig.json src test proto | tar -C "$stage" -xf - ||
  unavailable "copying the project onto the guest's disk failed"
if ! "$repo/node_modules/.bin/tsc" -p "$repo/test/guest/tsconfig.json" --outDir "$stage" >"$work/tsc.log" 2>&1; then
  unavailable "tsc -p test/guest/tsconfig.json failed: $(head -n 5 "$work/tsc.log" | tr '\n' ' ')"
fi
{
  printf 'export CI=%q CTRWATCH_GUEST=1\n' "${CI:-false}"
  # The variables that steer the guest (see docs/cgroup-v2.md) travel along.
  while IFS='=' read -r name value; do
    printf 'export %s=%q\n' "$name" "$value"
  done < <(env | grep -E '^CTRWATCH_GUEST_(TEST_[A-Z_]+|COMMAND)=' || true)
} >"$stage/.guest-env"
make_disk "$stage" "$work/project.ext4" ctrwatch-project
rm -rf "$stage"
log "project disk packed in $((SECONDS - start)) s"
check_time

# loglevel=5: the kernel's warnings reach the console, among them the stacks of a soft lockup (docs/cgroup-v2.md).
kernel_args="console=ttyS0,115200 panic=-1 quiet loglevel=5 cgroup_no_v1=all mitigations=off random.trust_cpu=on"
systemd_args="ctrwatch.systemd=1 systemd.unit=ctrwatch-guest.target systemd.show_status=0 systemd.log_level=warning"
# Starts qemu in the background with accelerator $1 for the boot $2 (cgroupfs: stage2 is PID 1; systemd: systemd is);
# sets qemu_pid. Every disk is opened with snapshot=on: a boot changes none of them.
boot() {
  local how=$1 mode=$2 args=$kernel_args
  : >"$work/console.log"
  : >"$work/results.tap"
  [[ $mode == systemd ]] && args="$args $systemd_args"
  case $how in
  kvm) set -- -accel kvm -cpu host ;;
  tcg) set -- -accel tcg,thread=multi -cpu max ;;
  esac
  qemu-system-x86_64 "$@" -smp 2 -m "$memory_mb" -nodefaults -nic none -display none -monitor none -no-reboot \
    -kernel "$base/vmlinuz" -initrd "$base/initrd.cpio" -append "$args" \
    -drive "file=$base/root.ext4,if=virtio,format=raw,snapshot=on" \
    -drive "file=$work/project.ext4,if=virtio,format=raw,snapshot=on" \
    -drive "file=$deps_disk,if=virtio,format=raw,snapshot=on" \
    -serial "file:$work/console.log" -serial "file:$work/results.tap" >"$work/qemu.log" 2>&1 &
  qemu_pid=$!
  boot_started=$SECONDS
}

# The last $1 lines of qemu's own output (its errors: a bad option, a missing file), on one line.
qemu_said() {
  tr -d '\r' <"$work/qemu.log" 2>/dev/null | grep -v '^$' | tail -n "$1" | tr '\n' ' ' | sed 's/ $//'
}

# The smaller of $1 and the seconds left.
within() {
  local l
  l=$(left)
  echo $(($1 < l ? $1 : l))
}

# Waits up to $1 s for the guest's first line; 0 when it came.
wait_for_init() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    grep -q 'ctrwatch-guest: init' "$work/console.log" 2>/dev/null && return 0
    kill -0 "$qemu_pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# KVM is tried once per host kernel and qemu version: nested KVM that hangs the guest is remembered for a day.
verdict_file=$cache/kvm-verdict-$(uname -r)-$(qemu-system-x86_64 --version | awk '{ print $4; exit }')
chosen=tcg
probe_kvm() {
  if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
    [[ $accel == kvm ]] && unavailable "CTRWATCH_GUEST_ACCEL=kvm but /dev/kvm is not usable"
    log "no usable /dev/kvm: TCG"
  elif [[ $accel == auto && -n $(find "$verdict_file" -mmin -1440 2>/dev/null) ]]; then
    log "KVM hung the guest here before ($(cat "$verdict_file")): TCG"
  else
    doing="probing KVM (a boot under KVM must reach init within ${probe_s} s)"
    boot kvm cgroupfs
    if wait_for_init "$(within "$probe_s")"; then
      chosen=kvm
      return
    fi
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=""
    check_time
    local last said
    last=$(tr -d '\r' <"$work/console.log" | grep -v '^$' | tail -n 1)
    said=$(qemu_said 3)
    [[ -n $said ]] && last="${last:-none}; qemu said: $said"
    echo "no init line within ${probe_s} s under KVM; last console line: ${last:-none}" >"$verdict_file"
    [[ $accel == kvm ]] && unavailable "the guest did not reach init under KVM within ${probe_s} s (${last:-no console output})"
    log "the guest did not reach init under KVM within ${probe_s} s (last console line: ${last:-none}): TCG"
  fi
}
[[ $accel == kvm || $accel == auto ]] && probe_kvm

overall=0
timings=()
# One boot ($1: cgroupfs or systemd), its TAP relayed live; a boot already started by the KVM probe is used as it is.
guest_run() {
  local mode=$1
  check_time
  doing="running the $mode boot under $chosen"
  if [[ -z $qemu_pid ]]; then
    boot "$chosen" "$mode"
    local init_s
    init_s=$(within 120)
    if ! wait_for_init "$init_s"; then
      if kill -0 "$qemu_pid" 2>/dev/null; then log "no init line within $init_s s under $chosen"; else log "qemu exited"; fi
    fi
  fi
  log "$mode boot under $chosen; TAP follows"
  tail -n +1 -f --pid="$qemu_pid" "$work/results.tap" 2>/dev/null | tr -d '\r' &
  # The boot's own timeout, cut to what is left of the stage.
  local relay_pid=$! deadline=$((boot_started + timeout_s)) timed_out="" qemu_status
  ((deadline > stage_deadline)) && deadline=$stage_deadline
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      timed_out="the $mode boot did not finish within ${timeout_s} s"
      if ((deadline == stage_deadline)); then
        out_of_time=true
        timed_out="the stage's ${stage_s} s (CTRWATCH_GUEST_STAGE_S) ran out after $((SECONDS - start)) s while ${doing} ($((SECONDS - boot_started)) s into it, $(grep -cE '^(not )?ok [0-9]+ ' "$work/results.tap") tests reported): qemu stopped"
      fi
      kill "$qemu_pid" 2>/dev/null
      break
    fi
    sleep 1
  done
  wait "$qemu_pid" 2>/dev/null
  qemu_status=$?
  qemu_pid=""
  wait "$relay_pid" 2>/dev/null
  local results summary status=1 count
  results=$(tr -d '\r' <"$work/results.tap")
  summary=$(grep -E '^# ctrwatch-guest: ava exited' <<<"$results" | tail -n 1)
  count=$(grep -cE '^(not )?ok [0-9]+ ' <<<"$results")
  if [[ -z $summary ]]; then
    # The guest ended (or was stopped) before ava did: one more failing line, with qemu's own output (where a qemu
    # that could not start says why) and the console's tail.
    local why="the $mode boot ended before its tests finished (qemu exited ${qemu_status} after $((SECONDS - boot_started)) s)"
    local said
    said=$(qemu_said 3)
    [[ -n $said ]] && why="$why; qemu said: $said"
    [[ -n $timed_out ]] && why=$timed_out
    grep -q '^TAP version' <<<"$results" || echo "TAP version 13"
    echo "not ok $((count + 1)) - cgroup v2 guest: $why"
    echo "  ---"
    echo "  qemu: |"
    tr -d '\r' <"$work/qemu.log" | tail -n 20 | sed 's/^/    /'
    echo "  console: |"
    tr -d '\r' <"$work/console.log" | tail -n 40 | sed 's/^/    /'
    echo "  ..."
    echo "1..$((count + 1))"
  else
    [[ $summary =~ ava\ exited\ ([0-9]+) ]] && status=${BASH_REMATCH[1]}
  fi
  local setup_at tests_at
  setup_at=$(grep -oE 'setup done at [0-9.]+' <<<"$summary" | awk '{ print $4 }')
  tests_at=$(grep -oE 'tests done at [0-9.]+' <<<"$summary" | awk '{ print $4 }')
  timings+=("$mode boot: ${count} tests, qemu ran $((SECONDS - boot_started)) s (guest uptime: setup done at ${setup_at:-?} s, tests done at ${tests_at:-?} s)")
  if [[ $status != 0 ]]; then
    overall=1
    log "console tail of the $mode boot:"
    tr -d '\r' <"$work/console.log" | tail -n 40 >&2
  fi
}

booted_at=$SECONDS
out_of_time=false
guest_run cgroupfs
# Out of time: no second boot; the timings still follow.
[[ $out_of_time == true ]] || guest_run systemd
# Host-side timings: packing the disks, then each boot (its setup ends at the guest's "setup done" line).
echo "# guest under ${chosen}: packing $((booted_at - start)) s; $(printf '%s; ' "${timings[@]}")total $((SECONDS - start)) s of the ${stage_s} s allowed"
exit "$overall"
