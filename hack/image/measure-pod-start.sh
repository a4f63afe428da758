#!/usr/bin/env bash
# hack/image/measure-pod-start.sh: pod start (create → Ready) of a `ballast dev echo` pod on a fresh local cluster,
# the checkout's CLI (image named by tag) against the image's root filesystem (named by digest), runs interleaved.
# Needs `make build image` first; RUNS=4 by default; prints the load beside each figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
K="${KUBECTL:-$(hack/build-k8s.sh --print-dir)/kubectl}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/pod-start.XXXXXX")"
trap 'bin/ballast dev down --dir "$dir" --purge >/dev/null' EXIT
bin/ballast dev up --dir $dir --nodes 1 --gpu-nodes 0 --image-layout dist/image/oci --checkout-cli 2>/dev/null
export KUBECONFIG=$dir/kubeconfig
index=$(awk '$1=="index"{print $2}' dist/image/digests)
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
pod() { cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
  containers:
  - name: echo
    image: $2
    args: [dev, echo, --port, "8080"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    securityContext: {readOnlyRootFilesystem: true}
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
YAML
}
for i in $(seq "${RUNS:-4}"); do
  for mode in checkout image; do
    ref="ghcr.io/ballast-dev/ballast:$version"
    [ $mode = image ] && ref="ghcr.io/ballast-dev/ballast@$index"
    start=$(date +%s.%N)
    pod echo-$mode-$i "$ref" | $K apply -f - >/dev/null
    $K wait --for=condition=Ready pod/echo-$mode-$i --timeout=120s >/dev/null
    end=$(date +%s.%N)
    id=$($K get pod echo-$mode-$i -o jsonpath='{.status.containerStatuses[0].imageID}')
    echo "$mode run $i: $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }' ) s (load $(cut -d' ' -f1 /proc/loadavg)) imageID=$id"
    $K delete pod echo-$mode-$i --wait=false >/dev/null
  done
done
