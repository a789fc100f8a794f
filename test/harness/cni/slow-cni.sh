#!/bin/sh
# ctrwatch's own CNI plugin for the test harness (see test/harness/cni.ts). It configures NOTHING on the host or in the
# pod's network namespace: ADD waits a delay and answers a result claiming `eth0` with an address in the loopback
# range, DEL reads its input and prints nothing, VERSION names the versions it speaks.
#
# Its folder comes from SLOW_CNI_DIR (set by the wrapper the harness writes into the CNI bin_dir):
#   $SLOW_CNI_DIR/delay-ms          milliseconds ADD waits before answering, read at each ADD (missing: 0)
#   $SLOW_CNI_DIR/hold              while it exists, ADD keeps waiting after the delay (at most 2 minutes): a test holds
#                                   a pod's network setup until it has done what it must do meanwhile
#   $SLOW_CNI_DIR/markers/ID.add    written (atomically) when ADD starts, before the delay: "network setup under way"
#   $SLOW_CNI_DIR/markers/ID.done   written just before ADD answers; its "delayMs" is the delay that ADD applied
#   $SLOW_CNI_DIR/markers/ID.del    written at each DEL
# where ID is CNI_CONTAINERID (the pod sandbox's ID). Each marker is one JSON object: the step, the container ID, the
# netns path, the pod's UID, name and namespace from CNI_ARGS, and the time in nanoseconds since the epoch.
set -eu

dir=${SLOW_CNI_DIR:?SLOW_CNI_DIR is not set}
markers=$dir/markers

# Names and UIDs in CNI_ARGS never hold quotes or backslashes; escape them anyway so a marker stays valid JSON.
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

cni_arg() {
  printf '%s' "${CNI_ARGS:-}" | tr ';' '\n' | sed -n "s/^$1=//p" | head -n 1
}

marker() {
  step=$1
  [ -d "$markers" ] || return 0 # the harness removed its folder (destroy() mid-ADD): recreate nothing
  file=$markers/$CNI_CONTAINERID.$step
  {
    printf '{"step":%s' "$(json_string "$step")"
    printf ',"containerId":%s' "$(json_string "$CNI_CONTAINERID")"
    printf ',"netns":%s' "$(json_string "${CNI_NETNS:-}")"
    printf ',"ifName":%s' "$(json_string "${CNI_IFNAME:-}")"
    printf ',"podUid":%s' "$(json_string "$(cni_arg K8S_POD_UID)")"
    printf ',"podName":%s' "$(json_string "$(cni_arg K8S_POD_NAME)")"
    printf ',"podNamespace":%s' "$(json_string "$(cni_arg K8S_POD_NAMESPACE)")"
    [ -z "${applied:-}" ] || printf ',"delayMs":"%s"' "$applied"
    printf ',"atNanos":"%s"}\n' "$(date +%s%N)"
  } >"$file.$$.tmp"
  mv -f "$file.$$.tmp" "$file" # rename: a reader never sees half a marker
}

case ${CNI_COMMAND:-} in
ADD)
  cat >/dev/null
  marker add
  delay=$(cat "$dir/delay-ms" 2>/dev/null || echo 0)
  case $delay in '' | *[!0-9]*) delay=0 ;; esac
  if [ "$delay" -gt 0 ]; then
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  fi
  applied=$delay
  waited=0
  while [ -e "$dir/hold" ] && [ "$waited" -lt 2400 ]; do
    sleep 0.05
    waited=$((waited + 1))
  done
  marker done
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":%s,"sandbox":%s}],"ips":[{"interface":0,"address":"127.0.0.2/8"}],"dns":{}}\n' \
    "$(json_string "${CNI_IFNAME:-eth0}")" "$(json_string "${CNI_NETNS:-}")"
  ;;
DEL)
  cat >/dev/null
  marker del
  ;;
CHECK | STATUS | GC)
  cat >/dev/null
  ;;
VERSION)
  printf '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\n'
  ;;
*)
  printf '{"cniVersion":"1.0.0","code":4,"msg":"unknown CNI_COMMAND %s"}\n' "${CNI_COMMAND:-}"
  exit 1
  ;;
esac
