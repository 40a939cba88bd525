// Package deploy holds what an operator deploys next to promoengine: the
// Grafana dashboard and the Prometheus alert rules. Its test keeps them
// true to the metrics the engine exports.
package deploy

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/metrics"
)

// exported records the series names of every collector registered on it:
// a histogram's name_bucket, name_sum and name_count, the name otherwise.
type exported map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (e exported) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	_, histogram := c.(prometheus.Histogram)
	if _, ok := c.(*prometheus.HistogramVec); ok {
		histogram = true
	}
	for d := range ch {
		name := fqName.FindStringSubmatch(d.String())[1]
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				e[name+s] = true
			}
			continue
		}
		e[name] = true
	}
	return nil
}

func (e exported) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = e.Register(c)
	}
}

func (e exported) Unregister(prometheus.Collector) bool { return false }

func exportedNames(t *testing.T) exported {
	e := exported{}
	metrics.New(e)
	metrics.RegisterReady(e, func() bool { return true })
	require.Contains(t, e, "promo_events_total")
	require.Contains(t, e, "promo_batch_seconds_bucket")
	require.NotContains(t, e, "promo_events_total_bucket")
	return e
}

var promql = parser.NewParser(parser.Options{})

// metricNames are the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	node, err := promql.ParseExpr(expr)
	require.NoError(t, err, expr)
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			require.NotEmpty(t, vs.Name, "%s: a selector names its metric", expr)
			names = append(names, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, names, "%s selects no metric", expr)
	return names
}

// grafanaVars are the dashboard's variables, replaced by values PromQL
// parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")

func TestDashboardNamesExportedMetrics(t *testing.T) {
	t.Parallel()
	names := exportedNames(t)
	data, err := os.ReadFile("grafana/promoengine.json")
	require.NoError(t, err)
	var dash struct {
		UID, Title string
		Panels     []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Name, Definition string }
		}
	}
	require.NoError(t, json.Unmarshal(data, &dash), "valid JSON")
	require.Equal(t, "promoengine", dash.UID)
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has queries", p.Title)
		for _, tg := range p.Targets {
			for _, n := range metricNames(t, grafanaVars.Replace(tg.Expr)) {
				require.True(t, names[n], "panel %q: %s is not a metric promoengine exports", p.Title, n)
				seen[strings.TrimSuffix(n, "_bucket")] = true
			}
		}
	}
	for _, v := range dash.Templating.List {
		if m := regexp.MustCompile(`label_values\((\w+),`).FindStringSubmatch(v.Definition); m != nil {
			require.True(t, names[m[1]], "variable %s: %s is not exported", v.Name, m[1])
		}
	}
	// What the issue asks the dashboard to show.
	for _, want := range []string{"promo_events_total", "promo_event_processing_seconds", "promo_outbox_delay_seconds",
		"promo_batch_seconds", "promo_batch_size", "promo_consumer_pending", "promo_outbox_backlog",
		"promo_outbox_oldest_seconds", "promo_dead_letters_total", "promo_odoo_push_seconds",
		"promo_odoo_failures_total", "promo_catalog_version"} {
		require.True(t, seen[want], "the dashboard shows %s", want)
	}
}

func TestAlertRulesParseAndNameExportedMetrics(t *testing.T) {
	t.Parallel()
	names := exportedNames(t)
	names["up"] = true // Prometheus's own, per scrape target
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "only alerting rules")
			require.NotEmpty(t, r.Annotations["summary"], "%s has a summary", r.Alert)
			alerts = append(alerts, r.Alert)
			for _, n := range metricNames(t, r.Expr) {
				require.True(t, names[n], "alert %s: %s is not a metric promoengine exports", r.Alert, n)
			}
		}
	}
	slices.Sort(alerts)
	require.Equal(t, []string{"PromoConsumerLagGrowing", "PromoDeadLetters", "PromoEngineDown", "PromoEngineNotReady",
		"PromoNoResultsWhileOrdersArrive", "PromoOdooPushErrors", "PromoOdooPushFailing", "PromoOutboxStale"}, alerts)
}

// A rule file with a mistake is refused: the check above can fail.
func TestAlertRuleParserRefusesBrokenRules(t *testing.T) {
	t.Parallel()
	_, errs := rulefmt.Parse([]byte("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(promo_events_total[5m]) >\n"),
		false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	require.NotEmpty(t, errs)
}
