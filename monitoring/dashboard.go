// Package monitoring builds canaryop's Grafana dashboard from the metrics the
// operator exports (internal/opmetrics), so that a panel cannot name a
// metric that does not exist; the tests check every query, and the alert
// rules of charts/canaryop/files/prometheus-rules.yaml, against
// opmetrics.Families. make monitoring writes the dashboard to
// charts/canaryop/files/dashboard.json, where the chart's ConfigMap and make
// release take it from.
package monitoring

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	m "github.com/atzedevries/canaryop/internal/opmetrics"
)

// UID is the dashboard's uid: links and provisioning find it by this.
const UID = "canaryop"

// sel selects the apps chosen in the dashboard's variables.
const sel = `{namespace=~"$namespace", name=~"$app"}`

var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// query is one PromQL query of a panel with its legend.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).Datasource(datasource)
}

// Dashboard returns the dashboard as indented JSON.
func Dashboard() ([]byte, error) {
	b := dashboard.NewDashboardBuilder("canaryop").
		Uid(UID).
		Description("Canary releases by canaryop, per CanaryApp: phase, traffic weight, analysis checks, outcomes, write-back to Git.").
		Tags([]string{"canaryop", "canary", "gitops"}).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus")).
		WithVariable(labelVariable("namespace", "Namespace", fmt.Sprintf("label_values(%s, namespace)", m.Phase))).
		WithVariable(labelVariable("app", "CanaryApp", fmt.Sprintf(`label_values(%s{namespace=~"$namespace"}, name)`, m.Phase)))

	l := &layout{}
	b.WithRow(l.row("Releases"))
	for _, p := range releasePanels(l) {
		b.WithPanel(p)
	}
	b.WithRow(l.row("Write-back to Git"))
	for _, p := range writeBackPanels(l) {
		b.WithPanel(p)
	}
	b.WithRow(l.row("Operator"))
	b.WithPanel(stat.NewPanelBuilder().Title("Build").
		Description("The canaryop builds Prometheus scrapes (" + m.BuildInfo + ").").
		GridPos(l.next(24, 4)).
		TextMode(common.BigValueTextModeName).
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		WithTarget(query(m.BuildInfo, "{{version}} ({{revision}}, {{goversion}})")))

	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func labelVariable(name, label, q string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).Label(label).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Datasource(datasource).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*")
}

// layout places panels left to right in rows of 24 columns, as Grafana
// would if a person dragged them there.
type layout struct{ x, y, rowH uint32 }

func (l *layout) next(w, h uint32) dashboard.GridPos {
	if l.x+w > 24 {
		l.x, l.y, l.rowH = 0, l.y+l.rowH, 0
	}
	g := dashboard.GridPos{X: l.x, Y: l.y, W: w, H: h}
	l.x += w
	l.rowH = max(l.rowH, h)
	return g
}

// row starts a new line with a row header.
func (l *layout) row(title string) *dashboard.RowBuilder {
	if l.x > 0 {
		l.x, l.y, l.rowH = 0, l.y+l.rowH, 0
	}
	r := dashboard.NewRowBuilder(title).GridPos(dashboard.GridPos{X: 0, Y: l.y, W: 24, H: 1})
	l.y++
	return r
}

func releasePanels(l *layout) []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		stat.NewPanelBuilder().Title("Phase").
			Description("The phase each CanaryApp is in now (" + m.Phase + ").").
			GridPos(l.next(8, 6)).
			TextMode(common.BigValueTextModeValueAndName).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: "value", Options: map[string]dashboard.ValueMappingResult{"1": {Text: cog.ToPtr("now")}}}}}).
			WithTarget(query(m.Phase+sel+" == 1", "{{namespace}}/{{name}}: {{phase}}")),
		statetimeline.NewPanelBuilder().Title("Phase over time").
			Description("When each CanaryApp was in which phase.").
			GridPos(l.next(16, 6)).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			WithTarget(query(m.Phase+sel+" == 1", "{{name}} {{phase}}")),
		timeseries.NewPanelBuilder().Title("Canary weight").
			Description("Share of each app's traffic routed to its canary (" + m.CanaryWeight + ").").
			GridPos(l.next(12, 8)).
			Unit("percent").Min(0).Max(100).
			LineInterpolation(common.LineInterpolationStepAfter).
			WithTarget(query(m.CanaryWeight+sel, "{{namespace}}/{{name}}")),
		timeseries.NewPanelBuilder().Title("Analysis checks by verdict").
			Description("Checks of the analysis query: Pass (no sample), Fail (a sample: the release is bad), Inconclusive (Prometheus unreachable, refused, NaN).").
			GridPos(l.next(12, 8)).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			WithTarget(query(fmt.Sprintf("sum by (namespace, name, verdict) (increase(%s%s[$__rate_interval]))", m.AnalysisChecks, sel), "{{name}} {{verdict}}")),
		timeseries.NewPanelBuilder().Title("Last check value").
			Description("What the analysis query returned at each check (the highest sample); no value while it returns no sample, which is a pass.").
			GridPos(l.next(12, 8)).
			ShowPoints(common.VisibilityModeAlways).
			WithTarget(query(m.AnalysisLastValue+sel, "{{namespace}}/{{name}}")),
		stat.NewPanelBuilder().Title("Outcomes").
			Description("Canaries promoted and rolled back in the time range (" + m.Outcomes + ").").
			GridPos(l.next(6, 8)).
			TextMode(common.BigValueTextModeValueAndName).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			WithTarget(query(fmt.Sprintf("sum by (outcome) (round(increase(%s%s[$__range])))", m.Outcomes, sel), "{{outcome}}")),
		stat.NewPanelBuilder().Title("Mean canary duration").
			Description("From the start of a canary to its outcome, in the time range (" + m.CanaryDuration + ").").
			GridPos(l.next(6, 8)).
			Unit("s").
			TextMode(common.BigValueTextModeValueAndName).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			WithTarget(query(fmt.Sprintf("sum by (outcome) (increase(%[1]s_sum%[2]s[$__range])) / sum by (outcome) (increase(%[1]s_count%[2]s[$__range]))", m.CanaryDuration, sel), "{{outcome}}")),
	}
}

func writeBackPanels(l *layout) []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		timeseries.NewPanelBuilder().Title("Write-back attempts").
			Description("Attempts to commit an outcome to Git or open its pull request, by result (" + m.WriteBackAttempts + ").").
			GridPos(l.next(8, 8)).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			WithTarget(query(fmt.Sprintf("sum by (namespace, name, result) (increase(%s%s[$__rate_interval]))", m.WriteBackAttempts, sel), "{{name}} {{result}}")),
		stat.NewPanelBuilder().Title("Write-back latency").
			Description("From a canary's outcome until it is in Git (commit pushed or pull request opened), retries included, in the time range (" + m.WriteBackLatency + ").").
			GridPos(l.next(8, 8)).
			Unit("s").
			TextMode(common.BigValueTextModeValueAndName).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			WithTarget(query(fmt.Sprintf("histogram_quantile(0.5, sum by (le) (increase(%s_bucket%s[$__range])))", m.WriteBackLatency, sel), "p50")).
			WithTarget(query(fmt.Sprintf("histogram_quantile(0.95, sum by (le) (increase(%s_bucket%s[$__range])))", m.WriteBackLatency, sel), "p95")),
		timeseries.NewPanelBuilder().Title("Pending write-back age").
			Description("How long an outcome has waited to reach Git; the alert CanaryopWriteBackPending fires after 15 minutes (" + m.WriteBackPendingSince + ").").
			GridPos(l.next(8, 8)).
			Unit("s").Min(0).
			WithTarget(query(fmt.Sprintf("time() - %s%s", m.WriteBackPendingSince, sel), "{{namespace}}/{{name}}")),
		statetimeline.NewPanelBuilder().Title("Pull request state").
			Description("State of each app's write-back pull request: open, merged, closed (" + m.WriteBackPullRequestState + ").").
			GridPos(l.next(24, 6)).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			WithTarget(query(m.WriteBackPullRequestState+sel+" == 1", "{{name}} {{state}}")),
	}
}
