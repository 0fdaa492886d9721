package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

func TestBenchPercentile(t *testing.T) {
	s := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {11, 2}, {0.1, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(1..10, %v) = %d, want %d", c.p, got, c.want)
		}
	}
	if got := percentile([]int64{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %d, want 7", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of none = %d, want 0", got)
	}
	m := benchMetrics{}
	// Unsorted on purpose: addLatencies sorts.
	addLatencies(m, "lat", []int64{int64(3 * time.Millisecond), int64(time.Millisecond), int64(100 * time.Millisecond), int64(2 * time.Millisecond)})
	if m["lat_p50_ms"] != 2 || m["lat_p99_ms"] != 100 || m["lat_max_ms"] != 100 {
		t.Errorf("addLatencies = %v, want p50 2, p99 100, max 100", m)
	}
}

func TestBenchSummarize(t *testing.T) {
	got := summarize([]benchMetrics{{"a": 3, "b": 1}, {"a": 1}, {"a": 2}, {"a": 10, "b": 5}})
	if a := got["a"]; a != (benchSpread{Median: 2.5, Min: 1, Max: 10}) {
		t.Errorf("a = %+v, want median 2.5 of four runs, range 1-10", a)
	}
	if b := got["b"]; b != (benchSpread{Median: 3, Min: 1, Max: 5}) {
		t.Errorf("b = %+v, want median 3 over the two runs that have it", b)
	}
	odd := summarize([]benchMetrics{{"x": 9}, {"x": 1}, {"x": 4}})
	if odd["x"].Median != 4 {
		t.Errorf("median of 9,1,4 = %v, want 4", odd["x"].Median)
	}
}

func TestBenchOrderCheck(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		c := newOrderCheck()
		c.add("1", 0, 0)
		c.add("2", 2, 1) // writers interleave: fine
		c.add("5", 1, 0)
		c.add("9", 3, 1)
		if c.Duplicate+c.OutOfOrder != 0 || c.Missing([]int64{0, 1, 2, 3}) != 0 {
			t.Errorf("clean delivery flagged: %s, missing %d", c, c.Missing([]int64{0, 1, 2, 3}))
		}
	})
	t.Run("faults", func(t *testing.T) {
		c := newOrderCheck()
		c.add("1", 0, 0)
		c.add("2", 1, 0)
		c.add("2", 1, 0) // duplicate (not also out of order)
		c.add("4", 3, 0)
		c.add("3", 2, 0) // id goes back, and writer 0's 2 after its 3
		c.add("6", 5, 1)
		c.add("7", 4, 1) // id fine, but writer 1's 4 after its 5
		if c.Duplicate != 1 || c.OutOfOrder != 2 || c.Received != 7 {
			t.Errorf("got %s; want 1 duplicate, 2 out of order, 7 received", c)
		}
		if m := c.Missing([]int64{0, 1, 2, 3, 4, 5, 6, 7}); m != 2 {
			t.Errorf("missing = %d, want 2 (6 and 7)", m)
		}
	})
	t.Run("nchan ids", func(t *testing.T) {
		c := newOrderCheck()
		c.add("1795435275:9", 0, 0)
		c.add("1795435276:0", 1, 0) // next second: tag restarts
		c.add("1795435275:10", 2, 0)
		if c.OutOfOrder != 1 {
			t.Errorf("out of order = %d, want 1 (the third id is older)", c.OutOfOrder)
		}
	})
}

// TestBenchProcessCPU checks the CPU clock against getrusage for this
// process after it burns some CPU: the clock is read for another pid's
// encoding, so a wrong encoding reads another clock or fails.
func TestBenchProcessCPU(t *testing.T) {
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	_ = x
	clock, ok := processCPU(os.Getpid())
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	usage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if !ok || clock <= 0 {
		t.Fatalf("processCPU(self) = %v, %v", clock, ok)
	}
	// getrusage came second, so it can only be ahead (give or take its
	// microsecond rounding).
	if d := usage - clock; d < -time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("CPU clock %v, getrusage %v: want them within 50ms", clock, usage)
	}
	if _, ok := processCPU(1 << 22); ok { // above pid_max's ceiling: no such process
		t.Error("processCPU of a pid that cannot exist succeeded")
	}
}

func TestBenchParseStat(t *testing.T) {
	line := []byte("4242 (web (worker) 1) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 8 0 12345 0 0")
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.comm != "web (worker) 1" || st.cpu != 325*clockTick || st.reapedChildren != 7*clockTick {
		t.Errorf("parseStat = %+v; want ppid 17, comm with parentheses, cpu 3.25s, reaped 70ms", st)
	}
	a := cpuSample{per: map[int]time.Duration{1: 100, 2: 50, 3: 30}, reaped: 40}
	b := cpuSample{per: map[int]time.Duration{1: 60, 2: 20, 4: 10}, reaped: 10}
	// 1: +40; 2: +30; 3 (new): +30; 4 exited: its whole time is in the
	// root's reaped total (+30), less the 10 it had used before b.
	if got := a.since(b); got != 40+30+30+30-10 {
		t.Errorf("since = %v, want 120", got)
	}
}

func TestBenchSSERead(t *testing.T) {
	body := "retry: 2000\r\n\r\n: ping\n\nid: 7\nevent: x\ndata: {\"t\":5,\"pad\":\"0123456789abcdef\",\n data\ndata: \"n\":1}\n\n" +
		": ping\nid: 9\n\ndata: {\"n\": 2}\n\n" + "id: 10\ndata: cut"
	// The smallest buffer, so the long data line takes the ErrBufferFull path.
	c := &sseConn{body: bufio.NewReaderSize(strings.NewReader(body), 16), ready: make(chan struct{})}
	var got []string
	err := c.read(func(id, data []byte) { got = append(got, string(id)+"|"+string(data)) })
	want := []string{"7|{\"t\":5,\"pad\":\"0123456789abcdef\",\n\"n\":1}", "9|{\"n\": 2}"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("events %q, want %q", got, want)
	}
	if err != io.ErrUnexpectedEOF {
		t.Errorf("end = %v, want unexpected EOF (the last event was cut)", err)
	}
	if n, ok := jsonInt([]byte(`{"at":"x","data":{"n": 12,"t":34}}`), "t"); !ok || n != 34 {
		t.Errorf(`jsonInt "t" = %d, %v; want 34 (not "at")`, n, ok)
	}
	if _, ok := jsonInt([]byte(`{"n":"x"}`), "n"); ok {
		t.Error("jsonInt found a number in a string")
	}
}

// TestBenchFanoutEndToEnd runs `herald-bench fanout` with 5 subscribers
// and 10 events against a real herald, and the report over its JSON.
// herald runs as its own process, built from ./cmd/herald, so the server CPU the bench measures is
// herald's alone, not the load generator's (this test process): the bench
// must have measured the child's pid and not this one.
func TestBenchFanoutEndToEnd(t *testing.T) {
	dbURL := pgtest.URL(t)
	srv := startProc(t, []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, "DATABASE_URL="+dbURL)
	base := srv.URL
	waitReady(t, base, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	err := run(ctx, []string{"fanout", "--url", base, "--subscribers", "5", "--events", "10",
		"--rate", "0", "--runs", "3", "--duration", "20s", "--json", "--label", "tiny fanout"},
		env("DATABASE_URL", dbURL), &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	// "herald-bench: herald server processes [PID ...]"
	measured := ""
	for _, l := range strings.Split(errb.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "herald-bench: herald server processes "); ok {
			measured = rest
		}
	}
	if want := fmt.Sprintf("[%d]", srv.cmd.Process.Pid); measured != want {
		t.Fatalf("bench measured server processes %q, want herald's own process %s (this test is %d); log:\n%s",
			measured, want, os.Getpid(), errb.String())
	}
	var rs []benchResult
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	r := rs[0]
	if len(r.Runs) != 3 {
		t.Fatalf("%d runs, want 3", len(r.Runs))
	}
	for i, m := range r.Runs {
		if m["deliveries"] != 50 || m["expected"] != 50 || m["lost"] != 0 || m["duplicate"] != 0 || m["events"] != 10 {
			t.Errorf("run %d: %v; want 10 events, 50 deliveries, none lost or duplicated", i+1, m)
		}
		if !(m["lat_p50_ms"] > 0 && m["lat_p50_ms"] <= m["lat_p99_ms"] && m["lat_p99_ms"] <= m["lat_max_ms"]) {
			t.Errorf("run %d: latencies out of order: %v", i+1, m)
		}
		if _, ok := m["server_cpu_ms_per_1k"]; !ok {
			t.Errorf("run %d: no server CPU figure", i+1)
		}
		if _, ok := m["duplicate"]; !ok {
			t.Errorf("run %d: no duplicate count", i+1)
		}
	}
	if s := r.Summary["deliveries"]; s.Median != 50 {
		t.Errorf("summary deliveries %+v", s)
	}

	file := filepath.Join(t.TempDir(), "herald.json")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := run(ctx, []string{"report", file}, env(), &table, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| scenario | figure | herald |") || !strings.Contains(table.String(), "**tiny fanout**") {
		t.Errorf("report:\n%s", table.String())
	}
}

// TestBenchUsageErrors: a command-line mistake exits with status 2 and
// names what is wrong, before any server or database is reached.
func TestBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "needs a scenario"},
		{[]string{"--url", "http://x"}, "needs a scenario"},
		{[]string{"stampede"}, `unknown bench scenario "stampede"`},
		{[]string{"fanout", "extra"}, "takes no arguments"},
		{[]string{"fanout", "--target", "mercury"}, `--target "mercury"`},
		{[]string{"publish", "--target", "nchan"}, "--target herald only"},
		{[]string{"fanout", "--target", "nethttp"}, "serves long-poll only"},
		{[]string{"floor-server", "--listen", "0.0.0.0:8093"}, "want a loopback address"},
		{[]string{"floor-server", "extra"}, "takes no arguments"},
		{[]string{"report"}, "needs the JSON files"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), c.args, env(), &stdout, &stderr)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q = %v (exit %d), want a usage error containing %q", c.args, err, exitCode(err), c.want)
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"help"}, env(), &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "Usage: herald-bench SCENARIO") {
		t.Errorf("help: %v, %q", err, stdout.String())
	}
}
