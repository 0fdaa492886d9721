package stream_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/client"
)

// A notice inserted with SQL reaches a raw HTTP client, framed exactly as
// docs/PROTOCOL.md says, and the Go client, decoded to the same fields.
func TestStreamWireFormat(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	raw := newRawClient(t)
	channels := []string{"build-1", "build-2"}

	type notice struct{ channel, typ, data, wireData string }
	notices := []notice{
		{"build-1", "build-state-changed", `{"build":190852,"state":"STARTED"}`, `{"build":190852,"state":"STARTED"}`},
		{"build-3", "build-state-changed", `{"build":3}`, ""},                                        // not subscribed
		{"build-2", "", `{"nested": {"a": [1, 2]}, "s": "x y"}`, `{"s":"x y","nested":{"a":[1,2]}}`}, // jsonb's key order
		{"build-1", "a.b:c_d-e", `{}`, `{}`},
	}

	cases := []struct {
		name  string
		query string
		typed bool // an event: line per notice
	}{
		{"typed", "", true},
		{"events=message", "events=message", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStream(t, raw, env.URL, streamPath(channels, tc.query), nil)
			h := s.resp.Header
			for k, want := range map[string]string{
				"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if ms, err := strconv.Atoi(s.first.retry); err != nil || ms <= 0 {
				t.Errorf("retry: %q is not a positive number of milliseconds", s.first.retry)
			}
			head := env.Feed.Head()
			gc := subscribeGo(t, env.URL, channels, head, client.Options{})
			gc.waitFor(t, wait, "connected", func(c *goClient) bool { return c.states[client.StateConnected] > 0 })

			start := time.Now()
			for _, n := range notices {
				if n.typ == "" {
					// The column default: type message.
					if _, err := env.Pool.Exec(t.Context(), `INSERT INTO herald.events (channel, data) VALUES ($1, $2)`, n.channel, n.data); err != nil {
						t.Fatal(err)
					}
				} else {
					env.Insert(t, n.channel, n.typ, n.data)
				}
			}
			var want []*herald.Event
			for i, n := range notices {
				seq := head + 1 + int64(i)
				if n.wireData == "" {
					continue
				}
				typ := n.typ
				if typ == "" {
					typ = "message"
				}
				want = append(want, &herald.Event{Seq: seq, Channel: n.channel, Type: typ, Data: json.RawMessage(n.wireData)})

				f := s.nextData(t)
				prefix := fmt.Sprintf(`{"id":"%s.%d","channel":"%s","type":"%s","data":%s,"at":"`, env.Feed.Epoch(), seq, n.channel, typ, n.wireData)
				if !strings.HasPrefix(f.data, prefix) || !strings.HasSuffix(f.data, `"}`) {
					t.Fatalf("data: %s\nwant %s...\"}", f.data, prefix)
				}
				eventLine := ""
				if tc.typed {
					eventLine = "event: " + typ + "\n"
				}
				if wantRaw := fmt.Sprintf("id: %s.%d\n%sdata: %s\n", env.Feed.Epoch(), seq, eventLine, f.data); f.raw != wantRaw {
					t.Fatalf("block %q, want %q", f.raw, wantRaw)
				}
				var obj map[string]any
				if err := json.Unmarshal([]byte(f.data), &obj); err != nil {
					t.Fatalf("data is not JSON: %v", err)
				}
				if keys := slices.Sorted(maps.Keys(obj)); !slices.Equal(keys, []string{"at", "channel", "data", "id", "type"}) {
					t.Errorf("data keys %v", keys)
				}
				at, err := time.Parse(time.RFC3339Nano, obj["at"].(string))
				if err != nil || !strings.HasSuffix(obj["at"].(string), "Z") {
					t.Errorf("at %q is not an RFC 3339 UTC time: %v", obj["at"], err)
				} else if at.Before(start.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
					t.Errorf("at %v is not about now (%v)", at, start)
				}
			}

			got := gc.waitEvents(t, len(want), wait)
			if len(got) != len(want) {
				t.Fatalf("Go client got %d events, want %d", len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.Seq != w.Seq || g.Channel != w.Channel || g.Type != w.Type || string(g.Data) != string(w.Data) ||
					g.At.Before(start.Add(-time.Minute)) || g.At.After(time.Now().Add(time.Minute)) {
					t.Errorf("Go client event %d: %d %s %s %s %v; want %d %s %s %s", i, g.Seq, g.Channel, g.Type, g.Data, g.At,
						w.Seq, w.Channel, w.Type, w.Data)
				}
			}
			if m := gc.messages(); m[0].State == nil || m[0].State.State != client.StateConnecting ||
				m[1].State == nil || m[1].State.State != client.StateConnected {
				t.Errorf("Go client did not start with connecting, connected")
			}
		})
	}
}

// One connection on 50 channels gets exactly their events, in order, and
// none of the 50 other channels written in the same transactions.
func TestStreamManyChannels(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	var subscribed, others []string
	for i := range 50 {
		subscribed = append(subscribed, fmt.Sprintf("sub-%d", i))
		others = append(others, fmt.Sprintf("other-%d", i))
	}
	s := openStream(t, newRawClient(t), env.URL, streamPath(subscribed, ""), nil)
	gc := subscribeGo(t, env.URL, subscribed, env.Feed.Head(), client.Options{})
	gc.waitFor(t, wait, "connected", func(c *goClient) bool { return c.states[client.StateConnected] > 0 })

	// 20 transactions of 100 rows, each row on a channel of either set.
	const rounds, perRound = 20, 100
	want := map[int]string{} // n -> channel, for subscribed channels
	for r := range rounds {
		var chans []string
		var ns []int
		for k := range perRound {
			n := r*perRound + k
			sub := (n*7)%3 == 0
			set := others
			if sub {
				set = subscribed
			}
			ch := set[(n*13)%len(set)]
			chans, ns = append(chans, ch), append(ns, n)
			if sub {
				want[n] = ch
			}
		}
		if _, err := env.Pool.Exec(t.Context(), `
			INSERT INTO herald.events (channel, data)
			SELECT c, jsonb_build_object('n', n) FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS u(c, n, o) ORDER BY o`,
			chans, ns); err != nil {
			t.Fatal(err)
		}
	}
	env.Insert(t, subscribed[49], "done", `{"n": -1}`) // sentinel: everything before it has been sent

	check := func(name string, next func() (seq int64, channel string, data string)) {
		t.Helper()
		seen := map[int]bool{}
		var last int64
		for {
			seq, ch, data := next()
			var d struct{ N int }
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				t.Fatalf("%s: data %s: %v", name, data, err)
			}
			if seq <= last {
				t.Fatalf("%s: seq %d after %d", name, seq, last)
			}
			last = seq
			if d.N == -1 {
				break
			}
			if want[d.N] != ch || seen[d.N] {
				t.Fatalf("%s: event n=%d on %s: not subscribed, or duplicate", name, d.N, ch)
			}
			seen[d.N] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("%s: got %d events, want %d", name, len(seen), len(want))
		}
	}
	check("raw", func() (int64, string, string) {
		f := s.nextData(t)
		var ev herald.Event
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("raw: %s: %v", f.data, err)
		}
		if f.id != strconv.FormatInt(ev.Seq, 10) {
			t.Fatalf("raw: id: %s for event %d", f.id, ev.Seq)
		}
		return ev.Seq, ev.Channel, string(ev.Data)
	})
	events := gc.waitEvents(t, len(want)+1, wait)
	i := 0
	check("Go client", func() (int64, string, string) {
		if i >= len(events) {
			t.Fatalf("Go client: only %d events", len(events))
		}
		ev := events[i]
		i++
		return ev.Seq, ev.Channel, string(ev.Data)
	})
}
