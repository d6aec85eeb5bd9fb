// The CRDs of this module (example/prometheus-operator-crd) are the kubeconform schemas of the
// chart's ServiceMonitor, PodMonitor and PrometheusRule (build-kubeconform.sh copies them).
// Nothing imports it: keep the requirement through `go mod tidy`.
module gitstage.dev/testbins/kubeconform/crds

go 1.26.8

require github.com/prometheus-operator/prometheus-operator v0.85.0
