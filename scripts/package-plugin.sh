#!/usr/bin/env bash
# Packages examples/helm-plugin (the Helm 4 postrenderer/v1 plugin that runs `ess-guard` from
# PATH) as a signed tarball plus its provenance file, which `helm plugin install` verifies by
# default (Helm 4 refuses an unsigned tarball or one without its .prov).
#
#   scripts/package-plugin.sh --key "ESS Guard Release" --keyring ~/secring.gpg [--out dist]
#                             [--helm /path/to/helm4] [--passphrase-file FILE]
#
# --key      the signing key's name (user id) as GnuPG shows it
# --keyring  a SECRET keyring in the old GnuPG format (Helm cannot read GnuPG 2's .kbx/
#            private-keys-v1.d): gpg --export-secret-keys "<key>" > secring.gpg
# Users verify with the matching PUBLIC keyring (gpg --export "<key>" > pubring.gpg):
#   helm plugin install ess-guard-<version>.tgz --keyring pubring.gpg
#
# Prints the paths of the tarball and the .prov on stdout (last two lines).
set -euo pipefail

die() { echo "package-plugin.sh: error: $*" >&2; exit 2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
key="" keyring="" out="dist" helm="${HELM:-helm}" passphrase_file=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --key) key=${2:?--key needs a value}; shift 2 ;;
    --keyring) keyring=${2:?--keyring needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --helm) helm=${2:?--helm needs a value}; shift 2 ;;
    --passphrase-file) passphrase_file=${2:?--passphrase-file needs a value}; shift 2 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -n $key ]] || die "--key is required (the signing key's user id)"
[[ -n $keyring ]] || die "--keyring is required (a secret keyring exported with gpg --export-secret-keys)"
[[ -f $keyring ]] || die "keyring $keyring does not exist"
case $keyring in
  *.kbx) die "$keyring is GnuPG 2's keybox format, which Helm cannot read; export the key: gpg --export-secret-keys \"$key\" > secring.gpg" ;;
esac
version_line=$("$helm" version --short 2>/dev/null || true)
[[ $version_line == v4.* ]] || die "$helm is not Helm 4 (got '${version_line:-nothing}'); pass --helm /path/to/helm4"

plugin_dir=examples/helm-plugin
plugin_version=$(sed -n 's/^version: *//p' "$plugin_dir/plugin.yaml")
[[ -n $plugin_version ]] || die "$plugin_dir/plugin.yaml has no version"

mkdir -p "$out"
args=(plugin package "$plugin_dir" --sign --key "$key" --keyring "$keyring" -d "$out")
[[ -n $passphrase_file ]] && args+=(--passphrase-file "$passphrase_file")
"$helm" "${args[@]}" >&2

tarball="$out/ess-guard-$plugin_version.tgz"
[[ -f $tarball && -f $tarball.prov ]] || die "helm did not write $tarball and $tarball.prov"
echo "$tarball"
echo "$tarball.prov"
