package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// reportMetrics are the figures the side-by-side table shows per scenario,
// with their headings; lower is better unless noted.
var reportMetrics = map[string][][2]string{
	"fanout": {
		{"server_cpu_ms_per_1k", "server CPU ms / 1k deliveries"},
		{"pg_cpu_ms_per_1k", "Postgres CPU ms / 1k deliveries"},
		{"total_cpu_ms_per_1k", "server + Postgres CPU ms / 1k deliveries"},
		{"lat_p50_ms", "latency p50 ms"},
		{"lat_p99_ms", "latency p99 ms"},
		{"deliveries_per_s", "deliveries/s (higher is better)"},
		{"lost", "deliveries missing"},
		{"duplicate", "duplicate deliveries"},
	},
	"idle": {
		{"rss_kib_per_conn", "RSS KiB / connection"},
		{"pss_kib_per_conn", "Pss KiB / connection"},
		{"server_cpu_ms_per_s", "server CPU ms/s while idle"},
		{"pg_cpu_ms_per_s", "Postgres CPU ms/s while idle"},
	},
	"resume": {
		{"missing", "missing"},
		{"duplicate", "duplicate"},
		{"out_of_order", "out of order"},
		{"resets", "resets"},
		{"catchup_p50_ms", "caught up p50 ms"},
		{"catchup_max_ms", "caught up max ms"},
		{"server_cpu_ms_per_1k", "server CPU ms / 1k deliveries"},
		{"pg_cpu_ms_per_1k", "Postgres CPU ms / 1k deliveries"},
	},
	"publish": {
		{"inserts_per_s", "inserts/s (higher is better)"},
		{"insert_share", "INSERT share: with herald ÷ plain table, same run pair (higher is better)"},
		{"append_p50_ms", "INSERT p50 ms"},
		{"append_p99_ms", "INSERT p99 ms"},
		{"sequencer_drain_ms", "sequencer catch-up after writers stop, ms"},
		{"pg_cpu_ms_per_1k", "Postgres CPU ms / 1k inserts"},
		{"server_cpu_ms_per_1k", "herald CPU ms / 1k inserts"},
	},
	"quiet": {
		{"total_cpu_ms_per_s", "server + Postgres CPU ms/s, no traffic"},
		{"server_cpu_ms_per_s", "server CPU ms/s, no traffic"},
		{"pg_cpu_ms_per_s", "Postgres CPU ms/s, no traffic"},
		{"herald_cpu_ms_per_s", "herald + its Postgres sessions CPU ms/s, no traffic"},
		{"sessions_cpu_ms_per_s", "herald's Postgres sessions CPU ms/s, no traffic"},
		{"pg_rest_cpu_ms_per_s", "rest of Postgres (autovacuum, checkpointer...) CPU ms/s, no traffic"},
		{"sessions_changed", "windows where a session began or ended (figure a floor)"},
	},
	"feed": {
		{"commit_feed_p50_ms", "commit→feed p50 ms"},
		{"commit_feed_p99_ms", "commit→feed p99 ms"},
		{"publish_feed_p99_ms", "INSERT start→feed p99 ms"},
		{"publish_per_s", "events/s achieved"},
		{"commit_feed_negative", "commit→feed samples below 0 (seen before Append returned)"},
		{"lost", "events missing"},
		{"duplicate", "duplicate deliveries"},
	},
}

func init() {
	reportMetrics["channels"] = reportMetrics["fanout"]
	reportMetrics["longpoll"] = reportMetrics["fanout"]
}

// reportGroup is one scenario configuration's results, by target.
type reportGroup struct {
	name    string
	scen    string
	targets map[string]benchResult
}

// loadResults reads the JSON of bench runs (--json) and groups them by
// label (or scenario): the targets' results side by side, in the order the
// files give them, and the targets in order of appearance.
func loadResults(files []string) ([]*reportGroup, []string, error) {
	var groups []*reportGroup
	byName := map[string]*reportGroup{}
	var targets []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var rs []benchResult
		if err := json.Unmarshal(b, &rs); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, r := range rs {
			name := r.Label
			if name == "" {
				name = r.Scenario
			}
			if r.Scenario == "publish" {
				seq := "with sequencer"
				if r.Params["sequencer"] == false {
					seq = "no sequencer"
				}
				name = fmt.Sprintf("%s, %v writers, %s", name, r.Params["writers"], seq)
			}
			g := byName[name]
			if g == nil {
				g = &reportGroup{name: name, scen: r.Scenario, targets: map[string]benchResult{}}
				byName[name] = g
				groups = append(groups, g)
			}
			g.targets[r.Target] = r
			if !slices.Contains(targets, r.Target) {
				targets = append(targets, r.Target)
			}
		}
	}
	return groups, targets, nil
}

// benchReport prints one markdown table of bench results: a row per
// scenario and figure, a column per target, each cell the median and, in
// brackets, the range over the runs. --reading adds what the figures say
// against the targets of issue 8.
func benchReport(args []string, w io.Writer) error {
	reading := false
	if len(args) > 0 && args[0] == "--reading" {
		reading, args = true, args[1:]
	}
	if len(args) == 0 {
		return &usageError{"herald-bench report [--reading] needs the JSON files of herald-bench --json runs"}
	}
	groups, targets, err := loadResults(args)
	if err != nil {
		return err
	}
	if reading {
		printReading(w, groups)
		return nil
	}
	fmt.Fprintf(w, "| scenario | figure | %s |\n", strings.Join(targets, " | "))
	fmt.Fprintf(w, "|---|---|%s\n", strings.Repeat("---|", len(targets)))
	for _, g := range groups {
		first := true
		for _, mt := range reportMetrics[g.scen] {
			var cells []string
			found := false
			for _, t := range targets {
				r, ok := g.targets[t]
				s, has := r.Summary[mt[0]]
				if !ok || !has {
					cells = append(cells, "—")
					continue
				}
				found = true
				cells = append(cells, formatSpread(s))
			}
			if !found {
				continue
			}
			name := ""
			if first {
				name = "**" + g.name + "**"
				first = false
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", name, mt[1], strings.Join(cells, " | "))
		}
	}
	return nil
}

// formatSpread is "median (min–max)", or the value alone when the runs
// agree, with precision suited to its size.
func formatSpread(s benchSpread) string {
	if s.Min == s.Max {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e6:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
