#!/usr/bin/env bash
# `make release-artifacts`: writes the release files into OUT_DIR (default dist/release):
#   ballast-<version>.tgz  the Helm chart (helm package), the one `make release-push` pushes as an OCI artifact
#   install.yaml           deploy/base rendered by kustomize: namespace, CRD, RBAC, operator (kubectl apply -f)
#   crds.yaml              the ModelDeployment CRD alone
#   SHA256SUMS             sha256sum of the three files above (sha256sum -c SHA256SUMS checks them)
# The version is the chart's; the kustomize base must pin the same image tag as the chart's appVersion, so
# both install paths run the same image (the script stops with an error otherwise).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/dist/release}"
kubectl_bin="${KUBECTL:-kubectl}"
helm_bin="$("$repo/hack/helm/ensure-helm.sh")"

chart_field() { awk -v k="$1:" '$1==k {gsub(/"/, "", $2); print $2; exit}' "$repo/charts/ballast/Chart.yaml"; }
version="$(chart_field version)"
app_version="$(chart_field appVersion)"
base_tag="$(awk '$1=="newTag:" {gsub(/"/, "", $2); print $2; exit}' "$repo/deploy/base/kustomization.yaml")"
[ -n "$version" ] && [ -n "$app_version" ] || { echo "release-artifacts: cannot read version/appVersion from charts/ballast/Chart.yaml" >&2; exit 2; }
if [ "$base_tag" != "$app_version" ]; then
  echo "release-artifacts: deploy/base/kustomization.yaml pins image tag '$base_tag' but the chart's appVersion is '$app_version': make them equal" >&2
  exit 2
fi

mkdir -p "$out"
rm -f "$out"/ballast-*.tgz "$out/install.yaml" "$out/crds.yaml" "$out/SHA256SUMS"
"$helm_bin" package "$repo/charts/ballast" --destination "$out" >/dev/null
{
  echo "# Ballast $version: the operator, its RBAC and the ModelDeployment CRD in namespace ballast-system."
  echo "# kubectl apply --server-side -f install.yaml"
  "$kubectl_bin" kustomize "$repo/deploy/base"
} >"$out/install.yaml"
cp "$repo/crds/ballast.dev_modeldeployments.yaml" "$out/crds.yaml"
(cd "$out" && sha256sum "ballast-$version.tgz" install.yaml crds.yaml >SHA256SUMS)
echo "release-artifacts: wrote $out (ballast $version)" >&2
echo "$out"
