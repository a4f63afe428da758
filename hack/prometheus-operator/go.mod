// Pins prometheus-operator for its CRDs (ServiceMonitor, PodMonitor, PrometheusRule): the packaging tests install
// them so the API server validates the monitors Ballast ships (hack/prometheus-operator/ensure-crds.sh).
module ballast.dev/hack/prometheus-operator

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
