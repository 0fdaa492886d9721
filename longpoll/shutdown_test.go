package longpoll_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/apitest"
)

// testDrain (run by TestPollThousandWaiters): at shutdown
// (Server.Drain) 1,000 waiting polls all answer: 200, no events, the
// cursor they were given. A poll that arrives after the drain answers at
// once with 503 shutting_down instead of waiting out its timeout.
//
// The polls ask for a 25 s timeout, so an answer within drainBound (20 s)
// can only have come from the drain: that, not a speed, is what
// the bound proves. A drain takes well under a second on an idle machine
// (herald-bench measures delivery speeds), so the bound is over 10x that
// even on a loaded 2-core -race run.
func testDrain(t *testing.T, cr *crowd) {
	const drainBound = 20 * time.Second
	env, n := cr.env, cr.n
	head := insertOne(t, env, "hall", `{}`)
	results := cr.park(t, "hall", head)

	w := startCPUWindow(t)
	began := time.Now()
	env.Server.Drain()
	answers := collect(t, results, n, drainBound)
	var slowest time.Duration
	for i, a := range answers {
		if a.Status != http.StatusOK || len(a.Events) != 0 || a.Cursor != head {
			t.Fatalf("answer %d: status %d body %s, want 200 with no events and cursor %d", i, a.Status, a.Body, head)
		}
		slowest = max(slowest, a.At.Sub(began))
	}
	self, others := w.end(t)
	t.Logf("%d waiting polls answered within %v of Drain; meanwhile this process used %v of CPU and other processes %.0f%% of the machine (information only)",
		n, slowest, self, 100*others)
	waitNoPolls(t, env, drainBound)

	// A poll that arrives after the drain is sent elsewhere at once (503
	// shutting_down with Retry-After) instead of waiting out its timeout.
	a := mustFetch(t, cr.c, pollURL(env.URL, []string{"hall"}, itoa(head), "25"))
	if a.Status != http.StatusServiceUnavailable || !strings.Contains(string(a.Body), `"shutting_down"`) {
		t.Fatalf("poll after Drain: status %d body %s, want 503 shutting_down", a.Status, a.Body)
	}
}

// cpuWindow measures CPU use over a stretch of time: this process's (from
// getrusage) and the whole machine's (from /proc/stat), so a timing test
// can tell "herald is slow" from "other processes had the CPUs".
type cpuWindow struct {
	self        time.Duration
	busy, total uint64 // machine, in clock ticks
}

func startCPUWindow(t testing.TB) cpuWindow {
	var w cpuWindow
	w.self = cpuTime(t)
	w.busy, w.total = machineTicks(t)
	return w
}

// end returns this process's CPU time since w, and the share of the
// machine's capacity that other processes used (0 when unknown).
func (w cpuWindow) end(t testing.TB) (self time.Duration, others float64) {
	self = cpuTime(t) - w.self
	busy, total := machineTicks(t)
	if total <= w.total {
		return self, 0
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	otherTicks := float64(busy-w.busy) - float64(self/tick)
	return self, max(otherTicks, 0) / float64(total-w.total)
}

func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineTicks reads the aggregate "cpu" line of /proc/stat: busy (all but
// idle and iowait) and total ticks over all CPUs; zeros where unavailable.
func machineTicks(t testing.TB) (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0
		}
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// A poll whose client goes away ends its handler and frees its
// subscription: the next event on its channels is pushed to nobody, and
// the process's goroutines return to where they were.
func TestPollClientLeaves(t *testing.T) {
	env := start(t, apitest.Options{})
	chans := func(prefix string, k int) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		channels []string
	}{
		{"one channel", chans("one", 1)},
		{"many channels", chans("many", 20)}, // the set matcher, 20 registrations
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, 2)
			head := env.Feed.Head()
			handoffs := fanout(t, env, head)
			baseline := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			results := startPolls(ctx, c, 1, pollURL(env.URL, tc.channels, itoa(head), "25"))
			waitParked(t, env, 1, 10*time.Second)
			cancel()
			r := <-results
			if r.err == nil || !strings.Contains(r.err.Error(), "context canceled") {
				t.Fatalf("cancelled poll: %+v %v", r.a, r.err)
			}
			waitNoPolls(t, env, 10*time.Second)
			c.CloseIdleConnections()
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > baseline {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines, %d before the poll", runtime.NumGoroutine(), baseline)
				}
				time.Sleep(10 * time.Millisecond)
			}

			// One event on each of the poll's channels, in one transaction.
			if _, err := env.Pool.Exec(context.Background(), `
				INSERT INTO herald.events (channel, type, data)
				SELECT ch, 'test', '{}' FROM unnest($1::text[]) AS ch`, tc.channels); err != nil {
				t.Fatal(err)
			}
			if d := fanout(t, env, head+int64(len(tc.channels))) - handoffs; d != 0 {
				t.Fatalf("events handed to %v subscriptions after the client left, want 0", d)
			}
		})
	}
}
