package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// dashboardExprs returns every PromQL expression deploy/grafana/herald.json
// queries (panels, rows' panels and template variables).
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../deploy/grafana/herald.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Targets []struct{ Expr string }
		Panels  []json.RawMessage
	}
	var dash struct {
		Panels     []json.RawMessage
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/herald.json: %v", err)
	}
	var exprs []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	return exprs
}

// exported scrapes url/metrics and returns the names of the series it
// serves (a histogram's _bucket, _sum and _count included).
func exported(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
			}
			if f[3] == "histogram" {
				names[f[2]+"_bucket"] = true
			}
		}
	}
	return names
}

// TestDashboardMetricsExported: every metric the Grafana dashboard queries
// is one a running herald serves at /metrics (after the traffic that makes
// labelled series appear), and the dashboard covers what operators watch.
func TestDashboardMetricsExported(t *testing.T) {
	e := apitest.Start(t, apitest.Options{API: api.Config{Metrics: api.NewMetrics()}})
	// Traffic: a live delivery over each transport and a refused
	// subscription, so every labelled family has a series.
	e.Insert(t, "dash", "message", `{}`)
	e.WaitHead(t, 1, 30*time.Second)
	for _, u := range []string{"/v1/poll?channel=dash&cursor=0", "/v1/poll?channel=private-x"} {
		resp, err := http.Get(e.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", e.URL+"/v1/stream?channel=dash", nil)
	req.Header.Set("Last-Event-ID", "0")
	readStream(t, req, func(f []any) bool { return has(f, 1, isNotice) })
	names := exported(t, e.URL)

	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("found %d expressions in the dashboard; the walk is broken", len(exprs))
	}
	metric := regexp.MustCompile(`\b(herald_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+)\b`)
	queried := map[string]bool{}
	for _, x := range exprs {
		m := metric.FindAllString(x, -1)
		if len(m) == 0 {
			t.Errorf("expression queries no herald metric: %s", x)
		}
		for _, n := range m {
			queried[n] = true
		}
	}
	for n := range queried {
		if !names[n] {
			t.Errorf("the dashboard queries %s, which herald does not export", n)
		}
	}
	for _, want := range []string{"herald_connections", "herald_notices_delivered_total", "herald_delivery_latency_seconds_bucket",
		"herald_sequencer_leader", "herald_feed_lag_seconds_bucket", "herald_sequencer_head", "herald_log_head",
		"herald_feed_reconnects_total", "herald_resets_total", "herald_evictions_total", "herald_auth_failures_total", "herald_build_info"} {
		if !queried[want] {
			t.Errorf("the dashboard has no panel on %s", want)
		}
	}
}

// TestBuildInfoMetric: /metrics has herald_build_info = 1 with the
// running binary's version, revision and Go version.
func TestBuildInfoMetric(t *testing.T) {
	e := apitest.Start(t, apitest.Options{API: api.Config{Metrics: api.NewMetrics()}})
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b := api.ReadBuild()
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "herald_build_info{") {
			line = l
		}
	}
	for _, want := range []string{`goversion="` + b.GoVersion + `"`, `revision="` + b.Revision + `"`, `version="` + b.Version + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("herald_build_info line %q lacks %s", line, want)
		}
	}
	if !strings.HasSuffix(line, "} 1") {
		t.Errorf("herald_build_info line %q: want value 1", line)
	}
}
