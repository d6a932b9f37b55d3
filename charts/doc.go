// Package charts holds the Helm chart of canaryop (charts/canaryop) and its
// tests; it has no Go code of its own. The tests run the Helm CLI built from
// the Go module proxy (make helm, bin/helm/<version>/helm, or $HELM):
//
//   - helm lint --strict and helm template over the values of ci/*.yaml, and
//     values the chart must refuse;
//   - the chart renders the same manager Deployment, RBAC and metrics Service
//     as config/default (kustomize), and the same Argo CD Application reader
//     Role as argocd/operator-rbac.yaml;
//   - the CRD and the manager ClusterRole are the generated files of config/
//     (make manifests copies them), the PrometheusRule is
//     files/prometheus-rules.yaml and the dashboard ConfigMap holds
//     files/dashboard.json;
//   - every flag of the operator is a value, and every flag the chart passes
//     is one the operator knows;
//   - the values table in charts/canaryop/README.md is generated from the
//     comments in values.yaml (make chart-docs).
package charts
