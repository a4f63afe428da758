//go:build tools

// Pins the Helm CLI that hack/helm/ensure-helm.sh builds when helm is not on PATH.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
