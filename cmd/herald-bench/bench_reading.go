package main

import (
	"fmt"
	"io"
	"strings"
)

// printReading states, per scenario, where herald stands against nchan
// and against issue 8's targets, from the medians over the runs. It only
// compares; why is for the person reading the table.
func printReading(w io.Writer, groups []*reportGroup) {
	for _, g := range groups {
		h, hok := g.targets["herald"]
		n, nok := g.targets["nchan"]
		if !hok {
			continue
		}
		var says []string
		med := func(r benchResult, k string) (float64, bool) {
			s, ok := r.Summary[k]
			return s.Median, ok
		}
		// vs compares a lower-is-better figure: herald against nchan
		// times factor (the target; 0: none), and says who is ahead.
		vs := func(k, what, unit string, factor float64) {
			hv, ok1 := med(h, k)
			nv, ok2 := med(n, k)
			if !nok || !ok1 || !ok2 {
				return
			}
			s := fmt.Sprintf("%s: herald %s, nchan %s %s", what, fmtNum(hv), fmtNum(nv), unit)
			if nv > 0 {
				s += fmt.Sprintf(" (herald/nchan %.2f×)", hv/nv)
			}
			target := "≤ nchan"
			if factor != 1 {
				target = fmt.Sprintf("≤ %g× nchan", factor)
			}
			switch {
			case factor == 0:
				s += "; no target"
			case hv <= nv*factor:
				s += "; meets the target " + target
			default:
				s += "; misses the target " + target
			}
			says = append(says, s)
		}
		rate, _ := h.Params["rate"].(float64)
		switch g.scen {
		case "fanout", "channels", "longpoll":
			if g.scen == "fanout" && rate == 0 {
				if v, ok := med(h, "deliveries_per_s"); ok {
					verdict := "meets"
					if v < 100000 {
						verdict = "misses"
					}
					s := fmt.Sprintf("flat out: herald %s deliveries/s, %s the target of ≥ 100,000", fmtNum(v), verdict)
					if nv, ok := med(n, "deliveries_per_s"); nok && ok {
						s += fmt.Sprintf("; nchan %s/s", fmtNum(nv))
					}
					says = append(says, s)
				}
				vs("server_cpu_ms_per_1k", "server CPU per 1,000 deliveries", "ms", 0)
				break
			}
			// Issue 8's targets: fan-out CPU and p99 ≤ nchan's, channels
			// CPU ≤ 2× nchan's; none for long-poll.
			cpu, p99 := map[string]float64{"fanout": 1, "channels": 2}[g.scen], 0.0
			if g.scen == "fanout" {
				p99 = 1
			}
			vs("server_cpu_ms_per_1k", "server CPU per 1,000 deliveries", "ms", cpu)
			vs("lat_p99_ms", "latency p99", "ms", p99)
			if pg, ok := med(h, "pg_cpu_ms_per_1k"); ok {
				srv, _ := med(h, "server_cpu_ms_per_1k")
				says = append(says, fmt.Sprintf("herald's Postgres adds %s ms per 1,000 deliveries (herald + Postgres: %s ms)", fmtNum(pg), fmtNum(pg+srv)))
			}
			// The net/http floor (floor.go): the same exchange in Go with
			// nothing of herald's, so herald's figure splits into the two.
			if f, ok := g.targets["nethttp"]; ok {
				fv, ok1 := med(f, "server_cpu_ms_per_1k")
				hv, ok2 := med(h, "server_cpu_ms_per_1k")
				if ok1 && ok2 && fv > 0 {
					s := fmt.Sprintf("Go's net/http serving the same exchange and nothing else (herald-bench floor-server) takes %s ms per 1,000 deliveries: herald's server is %.2f× that", fmtNum(fv), hv/fv)
					if nv, ok := med(n, "server_cpu_ms_per_1k"); nok && ok && nv > 0 {
						s += fmt.Sprintf(", the floor %.2f× nchan", fv/nv)
					}
					says = append(says, s)
				}
			}
		case "idle":
			if v, ok := med(h, "rss_kib_per_conn"); ok {
				verdict := "meets"
				if v > 20 {
					verdict = "misses"
				}
				pss, _ := med(h, "pss_kib_per_conn")
				s := fmt.Sprintf("herald %s KiB RSS (%s KiB Pss) per idle connection (the memory each run's new connections took), %s the target of ≤ 20 KiB", fmtNum(v), fmtNum(pss), verdict)
				if nv, ok := med(n, "rss_kib_per_conn"); nok && ok {
					np, _ := med(n, "pss_kib_per_conn")
					s += fmt.Sprintf("; nchan %s KiB RSS (%s KiB Pss)", fmtNum(nv), fmtNum(np))
				}
				says = append(says, s)
			}
			if v, ok := med(h, "server_cpu_ms_per_s"); ok {
				says = append(says, fmt.Sprintf("idle CPU with the connections open: herald %s ms/s (heartbeats on the open connections; the sequencer sleeps while no rows come, docs/WAKE.md)", fmtNum(v)))
			}
		case "resume":
			for _, t := range []string{"herald", "nchan"} {
				r, ok := g.targets[t]
				if !ok {
					continue
				}
				bad := 0.0
				for _, run := range r.Runs {
					bad += run["missing"] + run["duplicate"] + run["out_of_order"] + run["resets"]
				}
				hist, _ := med(r, "history_events")
				verdict := fmt.Sprintf("0 missing, duplicate, out-of-order or reset in all %d runs", len(r.Runs))
				if bad > 0 {
					verdict = fmt.Sprintf("FAILED: %g wrong deliveries over %d runs", bad, len(r.Runs))
				}
				says = append(says, fmt.Sprintf("%s, resuming after %s events of history: %s", t, fmtNum(hist), verdict))
			}
		case "feed":
			p50, _ := med(h, "commit_feed_p50_ms")
			p99, _ := med(h, "commit_feed_p99_ms")
			rate, _ := med(h, "publish_per_s")
			says = append(says, fmt.Sprintf("commit→feed at %s events/s: p50 %s ms, p99 %s ms", fmtNum(rate), fmtNum(p50), fmtNum(p99)))
		}
		if len(says) > 0 {
			fmt.Fprintf(w, "- **%s**: %s.\n", g.name, strings.Join(says, "; "))
		}
	}
}
