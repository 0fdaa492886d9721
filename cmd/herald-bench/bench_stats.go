package main

import (
	"math"
	"slices"
	"sort"
	"time"
)

// benchMetrics is one run's figures, by name. Names carry their unit
// (lat_p99_ms, server_cpu_ms_per_1k, ...), so the JSON is self-describing
// and the report can pick any of them.
type benchMetrics map[string]float64

// benchSpread is the median and range of one metric over a scenario's runs.
type benchSpread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// summarize gives, for every metric any run has, its median and range over
// the runs that have it.
func summarize(runs []benchMetrics) map[string]benchSpread {
	names := map[string]bool{}
	for _, r := range runs {
		for k := range r {
			names[k] = true
		}
	}
	out := make(map[string]benchSpread, len(names))
	for k := range names {
		var vs []float64
		for _, r := range runs {
			if v, ok := r[k]; ok && !math.IsNaN(v) {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			continue
		}
		sort.Float64s(vs)
		out[k] = benchSpread{Median: median(vs), Min: vs[0], Max: vs[len(vs)-1]}
	}
	return out
}

// median of sorted values: the middle one, or the mean of the middle two.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile of sorted samples by the nearest-rank method: the smallest
// sample with at least p% of the samples at or below it. p in (0, 100].
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// addLatencies sorts samples (nanoseconds) in place and records
// prefix_p50_ms, _p90_ms, _p99_ms and _max_ms in m. No samples: nothing.
func addLatencies(m benchMetrics, prefix string, samples []int64) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	ms := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	m[prefix+"_p50_ms"] = ms(percentile(samples, 50))
	m[prefix+"_p90_ms"] = ms(percentile(samples, 90))
	m[prefix+"_p99_ms"] = ms(percentile(samples, 99))
	m[prefix+"_max_ms"] = ms(samples[len(samples)-1])
}

// addCPU records a process group's CPU time and, when there were
// deliveries, its cost per 1,000 of them.
func addCPU(m benchMetrics, prefix string, cpu time.Duration, deliveries int64) {
	msec := float64(cpu) / float64(time.Millisecond)
	m[prefix+"_cpu_ms"] = msec
	if deliveries > 0 {
		m[prefix+"_cpu_ms_per_1k"] = msec * 1000 / float64(deliveries)
	}
}
