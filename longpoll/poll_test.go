package longpoll_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store"
)

// atOnce bounds an answer that must not wait: over 10x what one request
// takes even on a loaded 2-core -race run, and below the timeout (25 s
// or more) of every poll held to it, so passing proves the poll answered
// without waiting for events or its timeout. Speeds are herald-bench's.
const atOnce = 15 * time.Second

// A poll whose cursor has events after it answers at once with exactly
// those events on its channels, in order, and a cursor that covers them.
func TestPollReturnsPendingEventsAtOnce(t *testing.T) {
	t.Parallel()
	env := start(t, apitest.Options{})
	// seq 1..12 in one transaction: every third on "b", the rest on "a";
	// then 3 on "c".
	if _, err := env.Pool.Exec(context.Background(), `
		INSERT INTO herald.events (channel, type, data)
		SELECT CASE WHEN i % 3 = 0 THEN 'b' ELSE 'a' END, 'e', jsonb_build_object('i', i)
		FROM generate_series(1, 12) AS i`); err != nil {
		t.Fatal(err)
	}
	waitSequenced(t, env, 12)
	insertMany(t, env, "c", 3)
	head := env.Feed.Head()
	c := newClient(t, 4)
	for _, tc := range []struct {
		name     string
		channels []string
		cursor   int64
	}{
		{"one channel from the start", []string{"a"}, 0},
		{"one channel from the middle", []string{"a"}, 7},
		{"other channel", []string{"b"}, 0},
		{"two channels", []string{"a", "b"}, 4},
		{"every channel", []string{"a", "b", "c"}, 0},
		{"only the last channel moved", []string{"c"}, 12},
		{"one event left", []string{"c"}, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := logSeqs(t, env, tc.channels, tc.cursor)
			began := time.Now()
			a := mustPoll(t, c, pollURL(env.URL, tc.channels, itoa(tc.cursor), "25"))
			took := time.Since(began)
			if got := a.seqs(); !equalSeqs(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			for _, ev := range a.Events {
				if !slices.Contains(tc.channels, ev.Channel) || ev.Type == "" || len(ev.Data) == 0 || ev.At.IsZero() {
					t.Fatalf("event %+v: wrong channel or missing fields", ev)
				}
			}
			last := want[len(want)-1]
			// The contract: the cursor is the last seq returned. It may move
			// past it over other channels' events, never past an event of
			// these channels nor past the head.
			if a.Cursor < last || a.Cursor > head {
				t.Fatalf("cursor %d, want in [%d, %d]", a.Cursor, last, head)
			}
			if slices.Equal(tc.channels, []string{"a", "b", "c"}) && a.Cursor != last {
				t.Fatalf("cursor %d, want %d (the last returned)", a.Cursor, last)
			}
			if took > atOnce { // the poll asked for 30 s
				t.Fatalf("answered after %v, want at once (not at its 30 s timeout)", took)
			}
		})
	}
}

// More than MaxEvents (500) after the cursor: each answer holds at most 500,
// its cursor is the last one returned, and polling on from it delivers the
// rest without gap or duplicate, whether the backlog comes from the feed's
// ring, from the database, or arrives live as one burst.
func TestPollBatchLimit(t *testing.T) {
	const n = 1234
	for _, tc := range []struct {
		name string
		ring int  // feed ring size; small sends the backlog to the database
		live bool // poll first, then write the burst
	}{
		{"backlog from the ring", 0, false},
		{"backlog from the database", 16, false},
		{"live burst", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := start(t, apitest.Options{Feed: store.FeedOptions{RingSize: tc.ring}})
			c := newClient(t, 2)
			var first <-chan result
			if tc.live {
				first = startPolls(context.Background(), c, 1, pollURL(env.URL, []string{"bulk"}, "0", "25"))
				waitParked(t, env, 1, 10*time.Second)
			}
			insertMany(t, env, "bulk", n)
			var got []int64
			var sizes []int
			cursor := int64(0)
			for len(got) < n {
				var a answer
				if first != nil {
					a = collect(t, first, 1, 10*time.Second)[0]
					first = nil
				} else {
					a = mustPoll(t, c, pollURL(env.URL, []string{"bulk"}, itoa(cursor), "5"))
				}
				if len(a.Events) == 0 || len(a.Events) > 500 {
					t.Fatalf("after %d events: answer with %d events, want 1..500", len(got), len(a.Events))
				}
				if last := a.Events[len(a.Events)-1].Seq; a.Cursor != last {
					t.Fatalf("cursor %d, want %d (the last returned)", a.Cursor, last)
				}
				got = append(got, a.seqs()...)
				sizes = append(sizes, len(a.Events))
				cursor = a.Cursor
			}
			t.Logf("answers of %v events", sizes)
			for i, s := range got {
				if s != int64(i+1) {
					t.Fatalf("event %d has seq %d, want %d (gap or duplicate): %v", i, s, i+1, got[max(0, i-3):min(len(got), i+3)])
				}
			}
			if len(got) != n {
				t.Fatalf("%d events, want %d", len(got), n)
			}
			if !tc.live && !slices.Equal(sizes, []int{500, 500, 234}) {
				t.Fatalf("answers of %v events, want [500 500 234]", sizes)
			}
			// The backlog came from where the case says.
			ring := metric(t, env, `herald_replays_total{source="ring"}`)
			db := metric(t, env, `herald_replays_total{source="database"}`)
			t.Logf("backlog reads: %v from the ring, %v from the database", ring, db)
			if tc.ring == 0 && !tc.live && (ring < 3 || db != 0) || tc.ring > 0 && db < 3 {
				t.Fatalf("backlog reads: %v from the ring, %v from the database; not what %q means", ring, db, tc.name)
			}
		})
	}
}

// A waiting poll is woken by the commit of an event that arrives 200 ms
// into its wait, and answers with exactly that event (7 rounds). The feed
// re-reads the log only every 10 minutes here and the polls ask for 25 s,
// so an answer within atOnce can only have come from the commit's
// notification waking the poll: that is what the bound proves. The
// commit-to-answer latency is logged for information; its target is
// herald-bench's (the longpoll scenario), not this test's.
func TestPollWakesOnCommit(t *testing.T) {
	const rounds = 7
	env := start(t, apitest.Options{Feed: store.FeedOptions{Poll: 10 * time.Minute}})
	c := newClient(t, 2)
	insertOne(t, env, "warm", `{}`) // first-use costs out of the way
	var lat []time.Duration
	for i := range rounds {
		// A random pause between rounds, so the rounds do not fall into
		// step with the sequencer's cycle.
		<-time.After(rand.N(100 * time.Millisecond))
		head := env.Feed.Head()
		res := startPolls(context.Background(), c, 1, pollURL(env.URL, []string{"live"}, itoa(head), "25"))
		waitParked(t, env, 1, 10*time.Second)
		<-time.After(200 * time.Millisecond) // the event comes 200 ms into the wait
		select {
		case r := <-res:
			t.Fatalf("round %d: answered before the event: %+v %v", i, r.a, r.err)
		default:
		}
		env.Insert(t, "live", "test", `{"round": 1}`)
		committed := time.Now()
		a := collect(t, res, 1, atOnce)[0]
		if a.Status != http.StatusOK || len(a.Events) != 1 || a.Events[0].Seq != head+1 || a.Cursor != head+1 {
			t.Fatalf("round %d: answer %d %s, want the one event %d", i, a.Status, a.Body, head+1)
		}
		lat = append(lat, a.At.Sub(committed))
		env.WaitHead(t, head+1, 10*time.Second)
	}
	sorted := slices.Clone(lat)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("commit-to-answer latency (information only): median %v, min %v, max %v, all %v", sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1], lat)
}

// A poll with nothing to hand out answers at its timeout, empty, with the
// cursor it was given; when only other channels moved, the cursor may move
// over their events but not over any of its own.
func TestPollTimesOut(t *testing.T) {
	t.Parallel()
	env := start(t, apitest.Options{})
	insertMany(t, env, "mine", 3)
	c := newClient(t, 2)
	for _, tc := range []struct {
		name  string
		other int // events on another channel before polling
	}{
		{"quiet log", 0},
		{"other channels moved", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cursor := env.Feed.Head()
			if tc.other > 0 {
				insertMany(t, env, "theirs", tc.other)
			}
			head := env.Feed.Head()
			began := time.Now()
			a := mustPoll(t, c, pollURL(env.URL, []string{"mine"}, itoa(cursor), "1"))
			took := time.Since(began)
			if len(a.Events) != 0 {
				t.Fatalf("events %v, want none", a.seqs())
			}
			if tc.other == 0 && a.Cursor != cursor {
				t.Fatalf("cursor %d, want %d (the one given)", a.Cursor, cursor)
			}
			if a.Cursor < cursor || a.Cursor > head {
				t.Fatalf("cursor %d, want in [%d, %d]", a.Cursor, cursor, head)
			}
			if skipped := logSeqs(t, env, []string{"mine"}, cursor); len(skipped) > 0 && skipped[0] <= a.Cursor {
				t.Fatalf("cursor %d skips event %d", a.Cursor, skipped[0])
			}
			// At least its 1 s timeout (it waited); at most 10x that
			// (it answered at its timeout, not at the server's maximum).
			if took < 950*time.Millisecond || took > 10*time.Second {
				t.Fatalf("answered after %v, want at its 1s timeout", took)
			}
			t.Logf("timed out after %v with cursor %d (given %d, head %d)", took, a.Cursor, cursor, head)
		})
	}
}

// Without a cursor a poll answers at once with the head and no events,
// whatever its timeout.
func TestPollWithoutCursorAnswersHead(t *testing.T) {
	t.Parallel()
	env := start(t, apitest.Options{})
	c := newClient(t, 2)
	for _, tc := range []struct {
		name    string
		events  int // written before this case
		timeout string
	}{
		{"empty log", 0, "25"},
		{"after events", 7, "25"},
		{"default timeout", 2, ""},
		{"timeout 1", 1, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := env.Feed.Head()
			if tc.events > 0 {
				head = insertMany(t, env, "a", tc.events)
			}
			began := time.Now()
			a := mustPoll(t, c, pollURL(env.URL, []string{"a", "b"}, "", tc.timeout))
			// atOnce proves no wait for the 25 s and default (20 s)
			// timeouts; the timeout-1 case checks the answer only.
			if took := time.Since(began); took > atOnce {
				t.Fatalf("answered after %v, want at once", took)
			}
			if len(a.Events) != 0 || a.Cursor != head {
				t.Fatalf("answer %s, want no events and cursor %d", a.Body, head)
			}
		})
	}
}

// Every answer, success or error, carries Cache-Control: no-store (fetch
// checks it on every response in this package; this names the cases).
func TestPollHeaders(t *testing.T) {
	t.Parallel()
	env := start(t, apitest.Options{})
	head := insertMany(t, env, "a", 2)
	c := newClient(t, 2)
	for _, tc := range []struct {
		name   string
		url    string
		status int
	}{
		{"events", pollURL(env.URL, []string{"a"}, "0", "5"), 200},
		{"no cursor", pollURL(env.URL, []string{"a"}, "", ""), 200},
		{"timeout", pollURL(env.URL, []string{"a"}, itoa(head), "1"), 200},
		{"bad request", pollURL(env.URL, []string{"a"}, "x", ""), 400},
		{"reset", pollURL(env.URL, []string{"a"}, itoa(head+100), "5"), 410},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
				t.Fatalf("Cache-Control %q, want [no-store]", got)
			}
			if got := res.Header.Get("Content-Type"); got != "application/json" && got != "application/json; charset=utf-8" {
				t.Fatalf("Content-Type %q, want application/json", got)
			}
		})
	}
}
