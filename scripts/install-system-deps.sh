#!/usr/bin/env bash
# Installs the Debian packages the test suite needs and pip cannot provide:
#   chromium   the real browser the browser tests drive (/usr/bin/chromium)
#   graphviz   the `dot` binary the graph layout prefers
#   fonts-liberation  so pages and screenshots render text, not boxes
#
# Idempotent: when everything is present it only checks and exits (well under
# a second); `apt-get update` runs only when something must be installed.
# Needs root (CI runs as root) or sudo. On a machine without apt-get it says
# what is missing and fails, because the browser tests cannot run without it.
set -euo pipefail

# package name -> a file that proves it is installed
declare -A proof=(
    [chromium]=/usr/bin/chromium
    [graphviz]=/usr/bin/dot
    [fonts-liberation]=/usr/share/fonts/truetype/liberation
)

missing=()
for pkg in chromium graphviz fonts-liberation; do
    [[ -e "${proof[$pkg]}" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system deps: chromium, graphviz and fonts already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system deps: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "system deps: missing ${missing[*]}; run this script as root (or install sudo)" >&2
        exit 1
    fi
fi

echo "system deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

for pkg in "${missing[@]}"; do
    if [[ ! -e "${proof[$pkg]}" ]]; then
        echo "system deps: $pkg installed but ${proof[$pkg]} is still missing" >&2
        exit 1
    fi
done
echo "system deps: done"
