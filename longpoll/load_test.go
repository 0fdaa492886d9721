package longpoll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// A client that keeps polling while more than 10,000 events are written by
// concurrent transactions (some held open, some taking their xid early,
// some rolled back) receives every committed event exactly once, in order.
func TestPollUnderWriteLoad(t *testing.T) {
	env := start(t, apitest.Options{})
	channels := []string{"load-a", "load-b", "load-c", "load-d"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newClient(t, 2)

	// The client polls until the test has seen it hold every committed
	// event, then is stopped (mid-poll, usually).
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var received atomic.Int64
	type polled struct {
		events  []*herald.Event
		answers int
		err     error
	}
	done := make(chan polled, 1)
	go func() {
		var p polled
		defer func() { done <- p }()
		cursor := int64(0)
		for {
			a, err := fetch(pollCtx, c, pollURL(env.URL, channels, itoa(cursor), "5"))
			if pollCtx.Err() != nil {
				return
			}
			if err == nil && (a.Status != http.StatusOK || len(a.Events) > 500 || a.Cursor < cursor ||
				len(a.Events) > 0 && a.Cursor < a.Events[len(a.Events)-1].Seq) {
				err = &httpError{a}
			}
			if err != nil {
				p.err = err
				return
			}
			p.answers++
			p.events = append(p.events, a.Events...)
			received.Store(int64(len(p.events)))
			cursor = a.Cursor
		}
	}()

	// One connection per writer, so held-open transactions overlap
	// instead of queueing for the harness pool's few connections.
	cfg, err := pgxpool.ParseConfig(env.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	began := time.Now()
	want := pgtest.WriteLoad(t, ctx, pool, 16, 400, channels)
	wrote := time.Since(began)
	// The poll answer carries data as compact JSON; WriteLoad returns
	// jsonb's text (with spaces).
	want = compactKeys(t, want)
	if len(want) < 10000 {
		t.Fatalf("only %d events committed; the test wants more than 10,000", len(want))
	}
	for received.Load() < int64(len(want)) && ctx.Err() == nil {
		select {
		case p := <-done:
			t.Fatalf("client stopped after %d events: %v", len(p.events), p.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	caughtUp := time.Since(began)
	stopPolling()
	p := <-done
	if p.err != nil || ctx.Err() != nil {
		t.Fatalf("after %d of %d events: %v %v", len(p.events), len(want), p.err, ctx.Err())
	}
	t.Logf("%d committed events written in %v by 16 writers; the client had them all %v after the start, in %d polls",
		len(want), wrote, caughtUp, p.answers)
	pgtest.CheckExactlyOnce(t, p.events, want)
	// Nothing more comes: no duplicate or stray event after the last.
	last := p.events[len(p.events)-1].Seq
	if a := mustPoll(t, c, pollURL(env.URL, channels, itoa(last), "1")); len(a.Events) != 0 {
		t.Fatalf("extra events after the last committed one: %v", a.seqs())
	}
}

type httpError struct{ a answer }

func (e *httpError) Error() string {
	return "unexpected answer: status " + itoa(int64(e.a.Status)) + " body " + string(e.a.Body)
}

func compactKeys(t testing.TB, m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(k)); err != nil {
			t.Fatalf("compact %s: %v", k, err)
		}
		out[b.String()] = v
	}
	return out
}

// crowd is one herald with a client for 1,000 concurrent polls. Its
// connections stay open between rounds, so a second round parks quickly.
type crowd struct {
	n   int
	env *apitest.Env
	c   *http.Client
}

func newCrowd(t *testing.T, n int) *crowd {
	raiseFDLimit(t, uint64(2*n+512))
	cr := &crowd{n: n}
	// No safety-net re-read while the polls wait, so every log read
	// counted is caused by a wake-up.
	cr.env = start(t, apitest.Options{Feed: store.FeedOptions{Poll: 10 * time.Minute}})
	cr.c = newClient(t, n)
	return cr
}

// park sends n polls on channel from cursor and returns once every one of
// them waits in the handler.
func (cr *crowd) park(t *testing.T, channel string, cursor int64) <-chan result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	began := time.Now()
	results := startPolls(ctx, cr.c, cr.n, pollURL(cr.env.URL, []string{channel}, itoa(cursor), "25"))
	waitParked(t, cr.env, cr.n, 60*time.Second)
	t.Logf("%d polls parked in %v", cr.n, time.Since(began))
	return results
}

// 1,000 polls waiting on one channel are all answered by one event, and
// that wake-up reads the event log O(1) times, not once per poll; then
// (shutdown_test.go) a drain answers 1,000 waiting polls long before
// their own timeout.
func TestPollThousandWaiters(t *testing.T) {
	cr := newCrowd(t, 1000)
	t.Run("one event wakes all with O(1) log reads", func(t *testing.T) { testWakeAll(t, cr) })
	t.Run("drain answers all before their timeout", func(t *testing.T) { testDrain(t, cr) })
}

func testWakeAll(t *testing.T, cr *crowd) {
	env, n := cr.env, cr.n
	head := insertOne(t, env, "room", `{"n": 0}`)
	handoffs := fanout(t, env, head)

	before := env.DB.LogReads()
	results := cr.park(t, "room", head)
	parked := env.DB.LogReads()

	env.Insert(t, "room", "test", `{"n": 1}`)
	inserted := time.Now()
	answers := collect(t, results, n, 30*time.Second)
	var slowest time.Duration
	for i, a := range answers {
		if a.Status != http.StatusOK || len(a.Events) != 1 || a.Events[0].Seq != head+1 || a.Cursor != head+1 {
			t.Fatalf("answer %d: status %d body %s, want the one event %d", i, a.Status, a.Body, head+1)
		}
		slowest = max(slowest, a.At.Sub(inserted))
	}
	wake := env.DB.LogReads() - parked
	t.Logf("parking read the log %d times; one event answered all %d within %v of its commit with %d log reads",
		parked-before, n, slowest, wake)
	if parked-before > 3 {
		t.Fatalf("parking %d polls read the log %d times, want O(1)", n, parked-before)
	}
	if wake > 3 {
		t.Fatalf("one wake-up of %d polls read the log %d times, want O(1) (<= 3)", n, wake)
	}
	if d := fanout(t, env, head+1) - handoffs; d != float64(n) {
		t.Fatalf("the event was handed to %v subscriptions, want %d", d, n)
	}
	waitNoPolls(t, env, 10*time.Second)
}
