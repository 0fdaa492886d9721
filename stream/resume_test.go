package stream_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/client"
	"github.com/herald-dev/herald/store"
)

// A client that was away while 1,000 events were written to its channels
// resumes by cursor and gets exactly those, in order, once each: from the
// feed's ring, and from the database when the ring no longer reaches back.
func TestStreamResumeByCursor(t *testing.T) {
	channels := []string{"a", "b"}
	forms := []struct {
		name   string
		header func(cursor int64) http.Header
		query  func(cursor int64) string
	}{
		{"Last-Event-ID", func(c int64) http.Header { return http.Header{"Last-Event-Id": {strconv.FormatInt(c, 10)}} },
			func(int64) string { return "" }},
		{"lastEventId", func(int64) http.Header { return nil },
			func(c int64) string { return "lastEventId=" + strconv.FormatInt(c, 10) }},
		// A browser reconnecting a polyfilled first connection sends both;
		// the header is the newer position.
		{"header over query", func(c int64) http.Header { return http.Header{"Last-Event-Id": {strconv.FormatInt(c, 10)}} },
			func(int64) string { return "lastEventId=0" }},
	}
	sources := []struct {
		name string
		feed store.FeedOptions
	}{
		{"ring", store.FeedOptions{}},
		{"database", store.FeedOptions{RingSize: 64}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			env := apitest.Start(t, apitest.Options{Feed: src.feed})
			raw := newRawClient(t)
			for _, form := range forms {
				t.Run(form.name, func(t *testing.T) {
					// Connected: learn a cursor, then go away.
					s := openStream(t, raw, env.URL, streamPath(channels, ""), nil)
					seq := insertN(t, env, "a", "thing", -1, 1)[0]
					if f := s.nextData(t); f.id != strconv.FormatInt(seq, 10) {
						t.Fatalf("first event id %s, want %d", f.id, seq)
					}
					s.close()

					// 1,000 events on a and b, interleaved with another
					// channel, in 10 transactions.
					n := 0
					for range 10 {
						var chans []string
						var ns []int
						for k := range 150 {
							switch {
							case k%3 == 2:
								chans, ns = append(chans, "noise"), append(ns, -2)
							default:
								chans, ns = append(chans, channels[n%2]), append(ns, n)
								n++
							}
						}
						if _, err := env.Pool.Exec(t.Context(), `
							INSERT INTO herald.events (channel, data)
							SELECT c, jsonb_build_object('n', n) FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS u(c, n, o) ORDER BY o`,
							chans, ns); err != nil {
							t.Fatal(err)
						}
					}
					env.WaitHead(t, seq+1500, wait)

					s = openStream(t, raw, env.URL, streamPath(channels, form.query(seq)), form.header(seq))
					last := seq
					for i := range 1000 {
						f := s.nextData(t)
						var ev herald.Event
						if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
							t.Fatalf("event %d: %s: %v", i, f.data, err)
						}
						if want := fmt.Sprintf(`{"n":%d}`, i); string(ev.Data) != want || ev.Channel != channels[i%2] {
							t.Fatalf("event %d: %s on %s, want %s on %s", i, ev.Data, ev.Channel, want, channels[i%2])
						}
						if ev.Seq <= last || f.id != strconv.FormatInt(ev.Seq, 10) {
							t.Fatalf("event %d: seq %d (id: %s) after %d", i, ev.Seq, f.id, last)
						}
						last = ev.Seq
					}
					// Nothing more of the backlog: the next event is a new one.
					next := insertN(t, env, "b", "thing", -3, 1)[0]
					if f := s.nextData(t); f.id != strconv.FormatInt(next, 10) {
						t.Fatalf("after the backlog: id %s, want the new event %d", f.id, next)
					}
					s.close()
				})
			}
		})
	}
}

// A cursor whose history is gone, or that is ahead of the log, gets
// "event: reset" with the head as data and id, then live notices. The
// history is made "gone" as retention does: raise the floor, drop the rows.
func TestStreamReset(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	insertN(t, env, "a", "thing", 1, 20) // seqs 1..20
	const floor = 11
	if _, err := env.Pool.Exec(t.Context(), `UPDATE herald.sequencer_state SET floor_seq = $1`, floor); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Pool.Exec(t.Context(), `DELETE FROM herald.event_log WHERE seq < $1`, floor); err != nil {
		t.Fatal(err)
	}
	// The feed learns the floor with its next read of the log: make one.
	env.Insert(t, "zz", "message", `{}`)
	env.WaitHead(t, 21, 10*time.Second)
	// A second node on the same database: its ring never held seqs 1..20,
	// so it reads the database. The first node's ring still holds them.
	fresh := apitest.Start(t, apitest.Options{DBURL: env.DBURL})
	nodes := []struct {
		name string
		env  *apitest.Env
	}{{"database", fresh}, {"ring", env}}

	cases := []struct {
		name   string
		cursor int64
		reset  bool
	}{
		{"below floor", 5, true},
		{"just below floor", floor - 2, true},
		{"at floor", floor - 1, false},
		{"at head", -1, false}, // -1: the head
		{"ahead of head", 1000, true},
	}
	for _, node := range nodes {
		t.Run(node.name, func(t *testing.T) {
			raw := newRawClient(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					head := node.env.Feed.Head()
					cursor := tc.cursor
					if cursor < 0 {
						cursor = head
					}
					s := openStream(t, raw, node.env.URL, streamPath([]string{"a"}, ""),
						http.Header{"Last-Event-Id": {strconv.FormatInt(cursor, 10)}})
					if tc.reset {
						f := s.nextData(t)
						e := node.env.Feed.Epoch()
						want := fmt.Sprintf("id: %s.%d\nevent: reset\ndata: {\"cursor\":\"%s.%d\"}\n", e, head, e, head)
						if f.raw != want {
							t.Fatalf("cursor %d with floor %d and head %d: got %q, want %q", cursor, floor, head, f.raw, want)
						}
					} else {
						for seq := cursor + 1; seq <= head; seq++ {
							if seq == 21 {
								continue // the "zz" event
							}
							if f := s.nextData(t); f.id != strconv.FormatInt(seq, 10) {
								t.Fatalf("replay: got %q, want event %d", f.raw, seq)
							}
						}
					}
					// Then live, from the head: the next event is the new one.
					insertN(t, env, "a", "live", 100, 1)
					fresh.WaitHead(t, head+1, wait)
					if f := s.nextData(t); f.id != strconv.FormatInt(head+1, 10) || f.event != "live" {
						t.Fatalf("after reset: got %q, want live event %d", f.raw, head+1)
					}
					s.close()
				})
			}
		})
	}

	// The Go client surfaces the reset, then continues from its cursor.
	head := fresh.Feed.Head()
	gc := subscribeGo(t, fresh.URL, []string{"a"}, 3, client.Options{})
	gc.waitFor(t, wait, "reset", func(c *goClient) bool {
		for _, m := range c.msgs {
			if m.Reset != nil {
				return true
			}
		}
		return false
	})
	insertN(t, env, "a", "live", 200, 1)
	events := gc.waitEvents(t, 1, wait)
	var data []client.Message
	for _, m := range gc.messages() {
		if m.State == nil {
			data = append(data, m)
		}
	}
	if len(data) != 2 || data[0].Reset == nil || data[0].Reset.Cursor.Seq != head || data[0].Reset.Cursor.Epoch != events[0].Epoch || events[0].Seq != head+1 {
		t.Fatalf("Go client from 3: got %d messages (first reset %+v, first event %d), want reset %d then event %d",
			len(data), data[0].Reset, events[0].Seq, head, head+1)
	}
}
