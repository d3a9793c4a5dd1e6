#!/usr/bin/env bash
# The one test command of openbatch: builds the service, runs the Rust tests,
# then the conformance tests with every supported official Azure Batch SDK.
#
#   scripts/test-all.sh                 # everything
#   scripts/test-all.sh -k end_to_end   # extra arguments go to pytest
#
# Caches: cargo's target/ and one virtualenv per SDK version under
# target/venvs/, reused while its marker file matches its requirements.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# --- SDK versions under test: add a version here to test it too. ----------
# Each gets its own venv target/venvs/azure-batch-<version>. Its tests are
# conformance/ (a test there can be limited to some versions with
# @pytest.mark.sdk_versions(...)), where conformance/sdk-<other version>/
# directories are skipped, so conformance/sdk-<version>/ holds the tests of
# one version only.
#
# One entry per official azure-batch release. The msrest releases (1.1.0 to
# 14.2.0, azure.batch.BatchServiceClient) each run
# conformance/test_sdk_scenario.py with their own api-version and property
# names (13.0.0 also runs the other, 13.0.0-only tests). 15.1.0 is the
# TypeSpec client (azure.batch.BatchClient, api-version 2025-06-01): the
# msrest tests in conformance/ are not collected under it (conftest.py) and
# it runs conformance/sdk-15.1.0/ (the scenario, the Airflow Azure provider's
# Batch hook/operator request sequence, and a job manager task using its
# authentication token through BatchClient). Each venv takes ~10 s to
# create the first time (cached after), each scenario a few seconds.
SDK_VERSIONS=(
  "1.1.0"   # 2016-07-01.3.1
  "2.0.1"   # 2017-01-01.4.0
  "3.1.0"   # 2017-06-01.5.1
  "4.0.0"   # 2017-09-01.6.0
  "4.1.3"   # 2018-03-01.6.1
  "5.1.1"   # 2018-08-01.7.0
  "6.0.1"   # 2018-12-01.8.0
  "7.0.0"   # 2019-06-01.9.0
  "8.0.0"   # 2019-08-01.10.0
  "9.0.0"   # 2020-03-01.11.0
  "10.0.0"  # 2020-09-01.12.0
  "11.0.0"  # 2021-06-01.14.0
  "12.0.0"  # 2022-01-01.15.0
  "13.0.0"  # 2022-10-01.16.0
  "14.0.0"  # 2023-05-01.17.0
  "14.1.0"  # 2023-11-01.18.0
  "14.2.0"  # 2024-02-01.19.0
  "15.1.0"  # 2025-06-01 (TypeSpec BatchClient; brings azure-core)
)
PYTHON="${PYTHON:-python3}"
EXTRA_PIP=(pytest)
# Releases whose tests also move data through Azure Blob Storage (Azurite):
# conformance/test_data_azurite.py needs azure-storage-blob beside them.
BLOB_SDK_VERSIONS=" 11.0.0 13.0.0 "
extra_pip_for() {
  local extra=("${EXTRA_PIP[@]}")
  case "$BLOB_SDK_VERSIONS" in *" $1 "*) extra+=("azure-storage-blob==12.31.1") ;; esac
  echo "${extra[*]}"
}

section() {
  printf '\n========== %s ==========\n' "$*"
}

section "cargo fmt --check"
cargo fmt --check

section "cargo build --release --locked"
cargo build --release --locked

section "cargo clippy --release --locked --all-targets -- -D warnings"
cargo clippy --release --locked --all-targets -- -D warnings
BIN="$ROOT/target/release/openbatch"
[ -x "$BIN" ] || { echo "error: $BIN was not built" >&2; exit 1; }

section "cargo test --release --locked"
cargo test --release --locked

ensure_venv() {
  local version="$1" venv="$2"
  local marker="$venv/.openbatch-venv"
  local want
  local extra
  read -r -a extra <<< "$(extra_pip_for "$version")"
  want="python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') azure-batch==$version ${extra[*]}"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    echo "venv $venv is ready ($want)"
    return 0
  fi
  if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    # Debian's own python3 ships venv/ensurepip separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv
    fi
    "$PYTHON" -c 'import venv, ensurepip' || { echo "error: $PYTHON has no venv/ensurepip" >&2; return 1; }
  fi
  echo "creating $venv ($want)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$PYTHON" -m venv "$venv"
  local try
  for try in 1 2 3; do
    if "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        "azure-batch==$version" "${extra[@]}"; then
      echo "$want" > "$marker"
      return 0
    fi
    echo "pip install failed (attempt $try of 3)" >&2
    sleep $((try * 5))
  done
  return 1
}

# ===== BEGIN other clients: Azure CLI and @azure/batch (JavaScript) ========
# conformance/test_azure_cli.py runs `az batch ...` from the Azure CLI's own
# venv (target/venvs/azure-cli, ~2 min and ~750 MB the first time, cached
# after); conformance/test_js_sdk.py runs conformance/js/batch_scenario.js
# with Node and @azure/batch, installed by `npm ci` from
# conformance/js/package-lock.json into target/node/ (~10 s, cached). Both
# tests run once, in the 13.0.0 pytest run, and get their tools through
# OPENBATCH_AZ and OPENBATCH_NODE_MODULES (exported here, so always set).
# AZURE_CLI_VERSION is the newest azure-cli on PyPI when this was written;
# raise it on purpose (the venv is rebuilt when it changes).
AZURE_CLI_VERSION="${AZURE_CLI_VERSION:-2.91.0}"

ensure_python_venv_module() {
  if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv
    fi
    "$PYTHON" -c 'import venv, ensurepip' || { echo "error: $PYTHON has no venv/ensurepip" >&2; return 1; }
  fi
}

ensure_azure_cli() {
  local venv="$1"
  local marker="$venv/.openbatch-venv"
  local want
  want="python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') azure-cli==$AZURE_CLI_VERSION"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -x "$venv/bin/az" ]; then
    echo "Azure CLI venv $venv is ready ($want)"
    return 0
  fi
  ensure_python_venv_module
  local try
  for try in 1 2 3; do
    echo "creating $venv ($want), attempt $try of 3"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if "$PYTHON" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
          "azure-cli==$AZURE_CLI_VERSION" &&
        [ -x "$venv/bin/az" ]; then
      echo "$want" > "$marker"
      return 0
    fi
    echo "azure-cli install failed (attempt $try of 3)" >&2
    sleep $((try * 5))
  done
  return 1
}

# Node.js and npm, from Debian's packages when missing.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq nodejs npm
    fi
    command -v node >/dev/null && command -v npm >/dev/null || { echo "error: node and npm are needed" >&2; return 1; }
  fi
}

# npm_cached DIR WANT READY CMD...: runs CMD in a fresh DIR (3 attempts, for network
# errors) unless DIR's marker already says WANT and the path READY exists.
npm_cached() {
  local dir="$1" want="$2" ready="$3"
  shift 3
  local marker="$dir/.openbatch-cache"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -e "$ready" ]; then
    echo "$dir is ready ($want)"
    return 0
  fi
  local try
  for try in 1 2 3; do
    echo "installing into $dir ($want), attempt $try of 3"
    rm -rf "$dir" && mkdir -p "$dir"
    if (cd "$dir" && "$@"); then
      echo "$want" > "$marker"
      return 0
    fi
    echo "install into $dir failed (attempt $try of 3)" >&2
    sleep $((try * 5))
  done
  return 1
}

# @azure/batch from conformance/js/package-lock.json.
install_js_batch() {
  cp "$ROOT/conformance/js/package.json" "$ROOT/conformance/js/package-lock.json" . && npm ci --no-audit --no-fund --loglevel=error
}

section "Azure CLI $AZURE_CLI_VERSION: virtualenv"
ensure_azure_cli "$ROOT/target/venvs/azure-cli"
export OPENBATCH_AZ="$ROOT/target/venvs/azure-cli/bin/az"
section "@azure/batch (JavaScript): npm ci"
ensure_node
npm_cached "$ROOT/target/node" "node=$(node --version) lock=$(sha256sum conformance/js/package-lock.json | cut -d' ' -f1)" \
  "$ROOT/target/node/node_modules/@azure/batch" install_js_batch
export OPENBATCH_NODE_MODULES="$ROOT/target/node/node_modules"

# Azurite (npm), for the resource and output file tests: installed under
# target/azurite (cached by its version), started by each test on a free port.
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
section "Azurite $AZURITE_VERSION"
npm_cached "$ROOT/target/azurite" "node=$(node --version) azurite@$AZURITE_VERSION" \
  "$ROOT/target/azurite/node_modules/.bin/azurite-blob" npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
export OPENBATCH_AZURITE="$ROOT/target/azurite/node_modules/.bin/azurite-blob"
# ===== END other clients ===================================================

failed=()
for version in "${SDK_VERSIONS[@]}"; do
  venv="$ROOT/target/venvs/azure-batch-$version"
  section "azure-batch $version: virtualenv"
  ensure_venv "$version" "$venv"

  section "azure-batch $version: conformance tests"
  ignores=()
  for dir in conformance/sdk-*; do
    if [ -d "$dir" ] && [ "$dir" != "conformance/sdk-$version" ]; then
      ignores+=("--ignore=$dir")
    fi
  done
  set +e
  OPENBATCH_BIN="$BIN" OPENBATCH_SDK_VERSION="$version" \
    "$venv/bin/python" -m pytest -p no:cacheprovider -ra --durations=10 conformance ${ignores[@]+"${ignores[@]}"} "$@"
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "azure-batch $version: conformance tests FAILED (pytest exit $rc)" >&2
    failed+=("$version")
  fi
done

section "summary"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "conformance FAILED for azure-batch ${failed[*]}"
  exit 1
fi
echo "all tests passed (Rust tests; conformance with azure-batch ${SDK_VERSIONS[*]})"
