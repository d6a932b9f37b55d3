package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/analysis"
	"github.com/atzedevries/canaryop/internal/metrics"
	"github.com/atzedevries/canaryop/internal/workload"
)

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

// LabelMetricTemplates marks the admin's ConfigMaps of named queries in the
// operator's namespace; each data key is a query template.
const LabelMetricTemplates = "canary.atze.io/metric-templates"

// Reasons of a metric that could not be turned into a query.
const (
	ReasonMetricTemplateNotFound = "MetricTemplateNotFound"
	ReasonInvalidQueryTemplate   = "InvalidQueryTemplate"
)

// MetricTemplates finds the admin's named queries.
type MetricTemplates interface {
	// Query returns the template named name, or an error saying why not.
	Query(ctx context.Context, name string) (string, error)
}

// ConfigMapTemplates reads named queries from the ConfigMaps labelled
// LabelMetricTemplates=true in one namespace, the operator's: only the
// admin writes there, so a tenant can use a vetted query by name but
// cannot add one. A name two ConfigMaps define is refused as ambiguous.
type ConfigMapTemplates struct {
	Reader    client.Reader
	Namespace string
}

// Query implements MetricTemplates.
func (c ConfigMapTemplates) Query(ctx context.Context, name string) (string, error) {
	var list corev1.ConfigMapList
	if err := c.Reader.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{LabelMetricTemplates: "true"}); err != nil {
		return "", fmt.Errorf("reading the metric templates: %w", err)
	}
	var found []string
	query := ""
	for _, cm := range list.Items {
		if q, ok := cm.Data[name]; ok {
			found, query = append(found, cm.Name), q
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no metric template %q: the admin provides them in ConfigMaps labelled %s=true", name, LabelMetricTemplates)
	case 1:
		return query, nil
	}
	return "", fmt.Errorf("metric template %q is defined by several ConfigMaps (%v)", name, found)
}

// runMetricChecks judges every metric of the app (analysis.Metrics) once,
// all queries in parallel under one deadline, so that ten metrics cost no
// more of a worker's time than one.
func (r *CanaryAppReconciler) runMetricChecks(ctx context.Context, app *v1.CanaryApp, timeout time.Duration) []v1.MetricCheck {
	ms := analysis.Metrics(app)
	out := make([]v1.MetricCheck, len(ms))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { out[i] = r.judgeMetric(ctx, app, m, timeout) })
	}
	wg.Wait()
	return out
}

// judgeMetric renders m for the canary (and the primary for
// compareToPrimary), queries, and judges.
func (r *CanaryAppReconciler) judgeMetric(ctx context.Context, app *v1.CanaryApp, m v1.AnalysisMetric, timeout time.Duration) v1.MetricCheck {
	a := app.Spec.EffectiveAnalysis()
	tmpl, reason, err := r.queryTemplate(ctx, m)
	if err != nil {
		return v1.MetricCheck{Name: m.Name, Verdict: v1.CheckInconclusive, Reason: reason, Message: truncate(err.Error(), 256)}
	}
	vars := analysis.Vars{
		Name: app.Name, Namespace: app.Namespace,
		Canary: workload.CanaryName(app), Primary: workload.PrimaryName(app), Service: workload.ServiceName(app),
		Interval: analysis.PromDuration(analysis.WindowSince(m, a, r.canaryAge(app))), Workload: workload.CanaryName(app),
	}
	if m.TemplateRef != nil {
		vars.Args = m.TemplateRef.Args
	}
	canaryQuery, err := analysis.Render(tmpl, vars)
	if err != nil {
		return v1.MetricCheck{Name: m.Name, Verdict: v1.CheckInconclusive, Reason: ReasonInvalidQueryTemplate, Message: truncate(err.Error(), 256)}
	}
	q := metrics.Query{URL: app.Spec.PrometheusURL, Expr: canaryQuery, Timeout: timeout, Namespace: app.Namespace}
	if m.CompareToPrimary == nil {
		return analysis.Judge(m, r.Metrics.Check(ctx, q), nil)
	}
	vars.Workload = workload.PrimaryName(app)
	primaryQuery, err := analysis.Render(tmpl, vars)
	if err == nil && primaryQuery == canaryQuery {
		err = errors.New("compareToPrimary needs a query that uses {{ .Workload }}: it renders the same for the canary and the primary")
	}
	if err != nil {
		return v1.MetricCheck{Name: m.Name, Verdict: v1.CheckInconclusive, Reason: ReasonInvalidQueryTemplate, Message: truncate(err.Error(), 256)}
	}
	var canary, primary metrics.Result
	var wg sync.WaitGroup
	wg.Go(func() { canary = r.Metrics.Check(ctx, q) })
	pq := q
	pq.Expr = primaryQuery
	wg.Go(func() { primary = r.Metrics.Check(ctx, pq) })
	wg.Wait()
	return analysis.Judge(m, canary, &primary)
}

// canaryAge is how long the current canary has run.
func (r *CanaryAppReconciler) canaryAge(app *v1.CanaryApp) time.Duration {
	if t := app.Status.CanaryStartedAt; t != nil {
		return r.now().Sub(t.Time)
	}
	return 0
}

// queryTemplate is m's query template, resolving a templateRef through the
// admin's templates.
func (r *CanaryAppReconciler) queryTemplate(ctx context.Context, m v1.AnalysisMetric) (string, string, error) {
	if t := analysis.QueryTemplate(m); t != "" || m.TemplateRef == nil {
		return t, "", nil
	}
	if r.MetricTemplates == nil {
		return "", ReasonMetricTemplateNotFound, fmt.Errorf("metric template %q: this operator has no metric templates", m.TemplateRef.Name)
	}
	t, err := r.MetricTemplates.Query(ctx, m.TemplateRef.Name)
	if err != nil {
		return "", ReasonMetricTemplateNotFound, err
	}
	return t, "", nil
}

// metricsCheck is the AnalysisCheck of a check that judged metrics.
func metricsCheck(app *v1.CanaryApp, now time.Time, results []v1.MetricCheck) *v1.AnalysisCheck {
	a := app.Spec.EffectiveAnalysis()
	policies := map[string]v1.QueryErrorPolicy{}
	for _, m := range analysis.Metrics(app) {
		policies[m.Name] = analysis.Policy(m, a)
	}
	s := analysis.Summarize(results, func(name string) v1.QueryErrorPolicy { return policies[name] })
	return &v1.AnalysisCheck{
		Time: metav1Time(now), Image: app.Status.CanaryImage, Weight: app.Status.CanaryWeight,
		Value: s.Value, Verdict: s.Verdict, Message: truncate(s.Message, 256), Reason: s.Reason,
		Metrics: results, CountsAsFailure: s.CountsAsFailure,
	}
}
