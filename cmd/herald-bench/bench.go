package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/store"
)

const benchUsage = `herald-bench — herald's load generator (main.go says what it measures)

Usage: herald-bench SCENARIO [flags]
       herald-bench report RESULT.json...   (side-by-side markdown table)
       herald-bench floor-server [--listen 127.0.0.1:8093]
                 Go's net/http serving the longpoll exchange and nothing
                 else (floor.go): measure it with longpoll --target nethttp

Scenarios:
  fanout    S subscribers on one channel, M events at --rate (0: flat out)
  channels  S subscribers each on its own channel, M events benchSpread over them
  idle      S idle connections: the server's VmRSS and Pss per connection
  resume    S subscribers (herald: the Go client) drop, M events are
            written, they resume; missing/duplicate/out-of-order must be 0
  longpoll  S long-polling clients on one channel, M events at --rate
  publish   events/s into herald.events at each --writers count, with the
            sequencer running and, in a scratch database, without (herald)
  feed      commit→feed latency at --rate: Append's return to the event
            reaching a feed in this process (herald)
  quiet     CPU per second of the server (--server-pid: several replicas)
            and its Postgres with no traffic and no connections
`

// benchDefaults are each scenario's defaults for the flags not given.
var benchDefaults = map[string]struct {
	subscribers, events int
	rate                float64
	writers             string
	duration            time.Duration
}{
	"fanout":   {1000, 50, 5, "4", time.Minute},
	"channels": {1000, 2000, 200, "4", time.Minute},
	"idle":     {1000, 0, 0, "1", time.Minute},
	"resume":   {10, 20000, 0, "8", 2 * time.Minute},
	"longpoll": {1000, 50, 5, "4", time.Minute},
	"publish":  {0, 0, 0, "1,8,32", 3 * time.Second},
	"feed":     {0, 5000, 1000, "4", time.Minute},
	"quiet":    {0, 0, 0, "1", 10 * time.Second},
}

type benchConfig struct {
	dbFlags
	scenario    string
	target      string
	url         string
	subscribers int
	events      int
	rate        float64
	duration    time.Duration
	runs        int
	writers     []int
	jsonOut     bool
	serverPIDs  string
	pgPIDs      string
	label       string
	connectConc int
}

// bench is one invocation: the target and the meters.
type bench struct {
	cfg    benchConfig
	base   *url.URL
	tgt    target
	dbURL  string    // herald: its database
	db     *store.DB // herald: publishing handle (nil for nchan)
	server *cpuMeter
	pg     *cpuMeter // herald's Postgres, nil if unknown
	pids   []int     // server processes, for procMemory
	log    io.Writer // progress
	nonce  string    // makes channel names unique to this invocation
	run    atomic.Int64
}

// benchResult is one scenario's outcome against one target.
type benchResult struct {
	Scenario string                 `json:"scenario"`
	Target   string                 `json:"target"`
	Label    string                 `json:"label"`
	Params   map[string]any         `json:"params"`
	Runs     []benchMetrics         `json:"runs"`
	Summary  map[string]benchSpread `json:"summary"`
	Notes    []string               `json:"notes,omitempty"`
}

// run is herald-bench's whole program: main only wires it to the process.
// Only main reads the environment, through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return benchReport(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "floor-server" {
		return runFloorServer(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "help" {
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return &usageError{"herald-bench needs a scenario"}
	}
	cfg, err := parseBenchFlags(args[0], args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	scenarios := map[string]func(context.Context) ([]benchResult, error){
		"fanout":   func(ctx context.Context) ([]benchResult, error) { return b.deliver(ctx, false) },
		"channels": func(ctx context.Context) ([]benchResult, error) { return b.deliver(ctx, true) },
		"idle":     b.idle,
		"resume":   b.resume,
		"longpoll": b.longpoll,
		"publish":  b.publishRate,
		"feed":     b.feedLatency,
		"quiet":    b.quiet,
	}
	results, runErr := scenarios[cfg.scenario](ctx)
	for i := range results {
		results[i].Label = cfg.label
		results[i].Summary = summarize(results[i].Runs)
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			printResult(stdout, r)
		}
	}
	return runErr
}

func parseBenchFlags(scenario string, args []string, getenv func(string) string, stderr io.Writer) (benchConfig, error) {
	def, ok := benchDefaults[scenario]
	if !ok {
		fmt.Fprint(stderr, benchUsage)
		return benchConfig{}, &usageError{fmt.Sprintf("unknown bench scenario %q", scenario)}
	}
	cfg := benchConfig{scenario: scenario}
	e := &envFlags{fs: newFlags(scenario, stderr), getenv: getenv}
	cfg.bind(e)
	fs := e.fs
	var writers string
	fs.StringVar(&cfg.target, "target", "herald", "server under test: herald, nchan, or nethttp (longpoll only: herald-bench floor-server)")
	e.String(&cfg.url, "url", "HERALD_URL", "", "server's base URL (default http://127.0.0.1:8080 for herald, http://127.0.0.1:8091 for nchan, http://127.0.0.1:8093 for nethttp)")
	fs.IntVar(&cfg.subscribers, "subscribers", def.subscribers, "subscribers (connections)")
	fs.IntVar(&cfg.events, "events", def.events, "events per run")
	fs.Float64Var(&cfg.rate, "rate", def.rate, "events per second (0: flat out)")
	fs.DurationVar(&cfg.duration, "duration", def.duration, "cap on each run (publish: each measurement)")
	fs.IntVar(&cfg.runs, "runs", 3, "runs; the report gives the median and range")
	fs.StringVar(&writers, "writers", def.writers, "concurrent publishers (publish: a list, e.g. 1,8,32)")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print results as JSON")
	fs.StringVar(&cfg.serverPIDs, "server-pid", "", "server process ids, comma-separated (default: every process holding the URL's listening socket)")
	fs.StringVar(&cfg.pgPIDs, "pg-pid", "", "Postgres postmaster pid (default: found through the database; herald only)")
	fs.StringVar(&cfg.label, "label", "", "label for the report")
	fs.IntVar(&cfg.connectConc, "connect-concurrency", 100, "connections opened at once")
	if err := e.parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, &usageError{fmt.Sprintf("herald-bench %s takes no arguments, got %q", scenario, fs.Args())}
	}
	for _, f := range strings.Split(writers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, &usageError{fmt.Sprintf("--writers %q: want whole numbers >= 1", writers)}
		}
		cfg.writers = append(cfg.writers, n)
	}
	switch {
	case cfg.target != "herald" && cfg.target != "nchan" && cfg.target != "nethttp":
		return cfg, &usageError{fmt.Sprintf("--target %q: want herald, nchan or nethttp", cfg.target)}
	case cfg.target == "nethttp" && scenario != "longpoll":
		return cfg, &usageError{fmt.Sprintf("--target nethttp (herald-bench floor-server) serves long-poll only, not %s", scenario)}
	case cfg.runs < 1:
		return cfg, &usageError{"--runs must be at least 1"}
	case cfg.subscribers < 0 || cfg.events < 0 || cfg.rate < 0 || cfg.duration <= 0 || cfg.connectConc < 1:
		return cfg, &usageError{"--subscribers, --events and --rate must not be negative, --duration and --connect-concurrency must be positive"}
	case (scenario == "publish" || scenario == "feed") && cfg.target != "herald":
		return cfg, &usageError{fmt.Sprintf("herald-bench %s measures herald's database side: --target herald only", scenario)}
	}
	if cfg.url == "" {
		cfg.url = map[string]string{"herald": "http://127.0.0.1:8080", "nchan": "http://127.0.0.1:8091", "nethttp": "http://127.0.0.1:8093"}[cfg.target]
	}
	return cfg, nil
}

func newBench(ctx context.Context, cfg benchConfig, stderr io.Writer) (*bench, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.url, "/"))
	if err != nil || base.Scheme != "http" || base.Host == "" {
		return nil, &usageError{fmt.Sprintf("--url %q: want http://HOST:PORT", cfg.url)}
	}
	conns := cfg.subscribers
	if cfg.scenario == "idle" {
		conns *= cfg.runs // see idle
	}
	if err := raiseNoFile(conns + 256); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, base: base, log: stderr, nonce: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	if err := b.findServer(); err != nil {
		// publish and feed measure the database side; the server's CPU
		// is a bonus there.
		if cfg.scenario != "publish" && cfg.scenario != "feed" {
			return nil, err
		}
		b.progress("herald's CPU not measured: %v", err)
	}
	switch cfg.target {
	case "nchan":
		b.tgt = newNchanTarget("nchan", base, max(cfg.writers[0], 8))
	case "nethttp":
		// The floor speaks nchan's API (floor.go).
		b.tgt = newNchanTarget("nethttp", base, max(cfg.writers[0], 8))
	case "herald":
		dbURL, err := cfg.dbFlags.url()
		if err != nil {
			return nil, err
		}
		b.dbURL = dbURL
		maxW := 0
		for _, w := range cfg.writers {
			maxW = max(maxW, w)
		}
		db, err := store.Open(ctx, dsnWithPoolSize(dbURL, maxW+4), nil)
		if err != nil {
			return nil, err
		}
		b.db = db
		b.tgt = &heraldTarget{base: base, db: db}
		if err := b.findPostgres(ctx); err != nil {
			fmt.Fprintf(stderr, "herald-bench: Postgres CPU not measured: %v\n", err)
		}
	}
	return b, nil
}

// findServer picks the server's processes: --server-pid, or whoever holds
// the listening socket of the URL's port.
func (b *bench) findServer() error {
	pids, err := parsePIDs(b.cfg.serverPIDs)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		port, _ := strconv.Atoi(b.base.Port())
		if port == 0 {
			port = 80
		}
		if pids, err = listenerPIDs(port); err != nil {
			return err
		}
	}
	b.pids = pids
	b.server = &cpuMeter{pids: pids}
	fmt.Fprintf(b.log, "herald-bench: %s server processes %v\n", b.cfg.target, pids)
	return nil
}

func (b *bench) close() {
	if b.tgt != nil {
		b.tgt.Close()
	}
}

// progress prints a line on the progress writer.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "herald-bench: "+format+"\n", args...)
}

// params is the configuration a result records.
func (b *bench) params(extra map[string]any) map[string]any {
	p := map[string]any{"subscribers": b.cfg.subscribers, "events": b.cfg.events, "rate": b.cfg.rate,
		"writers": b.cfg.writers[0], "runs": b.cfg.runs, "url": b.cfg.url}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// printResult writes a result as text: each metric's median and range.
func printResult(w io.Writer, r benchResult) {
	fmt.Fprintf(w, "%s %s %s runs=%d %v\n", r.Target, r.Scenario, r.Label, len(r.Runs), r.Params)
	for _, k := range benchKeys(r.Summary) {
		s := r.Summary[k]
		fmt.Fprintf(w, "  %-28s %12.3f  (%.3f – %.3f)\n", k, s.Median, s.Min, s.Max)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// errBenchCheck is the error of a run whose delivery was wrong (resume): the
// results are still printed, and the exit status is 1.
var errBenchCheck = errors.New("delivery check failed")
