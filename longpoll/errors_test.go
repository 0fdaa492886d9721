package longpoll_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store"
)

// Malformed requests are a 400 with a stable code and a message, before
// anything waits.
func TestPollBadRequest(t *testing.T) {
	t.Parallel()
	env := start(t, apitest.Options{})
	c := newClient(t, 2)
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "&channel=c%d", i)
		}
		return b.String()[1:]
	}
	for _, tc := range []struct {
		name   string
		query  string // raw, so malformed values reach the server as written
		status int
		code   string
	}{
		{"cursor letters", "channel=a&cursor=abc", 400, "invalid_cursor"},
		{"cursor negative", "channel=a&cursor=-1", 400, "invalid_cursor"},
		{"cursor plus sign", "channel=a&cursor=%2B5", 400, "invalid_cursor"},
		{"cursor fraction", "channel=a&cursor=1.5.5", 400, "invalid_cursor"},
		{"cursor epoch upper case", "channel=a&cursor=Ab.5", 400, "invalid_cursor"},
		{"cursor epoch of 17", "channel=a&cursor=abcdefghijklmnopq.5", 400, "invalid_cursor"},
		{"cursor epoch without seq", "channel=a&cursor=ab.", 400, "invalid_cursor"},
		{"cursor seq without epoch", "channel=a&cursor=.5", 400, "invalid_cursor"},
		{"cursor beyond int64", "channel=a&cursor=9223372036854775808", 400, "invalid_cursor"},
		{"cursor far beyond int64", "channel=a&cursor=99999999999999999999999999", 400, "invalid_cursor"},
		{"timeout 0", "channel=a&cursor=0&timeout=0", 400, "invalid_timeout"},
		{"timeout negative", "channel=a&cursor=0&timeout=-1", 400, "invalid_timeout"},
		{"timeout above 25", "channel=a&cursor=0&timeout=26", 400, "invalid_timeout"},
		{"timeout 1000", "channel=a&cursor=0&timeout=1000", 400, "invalid_timeout"},
		{"timeout letters", "channel=a&cursor=0&timeout=abc", 400, "invalid_timeout"},
		{"timeout fraction", "channel=a&cursor=0&timeout=0.5", 400, "invalid_timeout"},
		{"timeout overflowing a Duration", "channel=a&cursor=0&timeout=9223372037", 400, "invalid_timeout"},
		{"timeout beyond int64", "channel=a&cursor=0&timeout=99999999999999999999", 400, "invalid_timeout"},
		{"raw semicolon in a channel", "channel=a;b&channel=c&cursor=0", 400, "invalid_query"},
		{"no channels", "cursor=0&timeout=5", 400, "no_channels"},
		{"no query", "", 400, "no_channels"},
		{"101 channels", many(101) + "&cursor=0", 400, "too_many_channels"},
		{"101 channels in a list", "channels=" + strings.ReplaceAll(strings.ReplaceAll(many(101), "&channel=", ","), "channel=", "") + "&cursor=0", 400, "too_many_channels"},
		{"empty channel", "channel=&cursor=0", 400, "invalid_channel"},
		{"empty channel in a list", "channels=a,,b&cursor=0", 400, "invalid_channel"},
		{"channel with a space", "channel=a%20b&cursor=0", 400, "invalid_channel"},
		{"channel with a slash", "channel=a/b&cursor=0", 400, "invalid_channel"},
		{"channel with a star", "channel=build-*&cursor=0", 400, "invalid_channel"},
		{"channel not ASCII", "channel=%C3%A4&cursor=0", 400, "invalid_channel"},
		{"channel with a NUL", "channel=a%00&cursor=0", 400, "invalid_channel"},
		{"channel of 165 characters", "channel=" + strings.Repeat("x", 165) + "&cursor=0", 400, "invalid_channel"},
		{"good and bad channel", "channel=a&channel=a%20b&cursor=0", 400, "invalid_channel"},
		// Boundaries that are fine (no cursor: answered at once).
		// An empty cursor is no cursor: the api's own tests
		// (TestBadInputControls) require it; see the report.
		{"cursor empty", "channel=a&cursor=", 200, ""},
		{"cursor and timeout empty", "channel=a&cursor=&timeout=", 200, ""},
		{"100 channels", many(100), 200, ""},
		{"100 channels and duplicates", many(100) + "&channel=c0&channel=c99", 200, ""},
		{"channel of 164 characters", "channel=" + strings.Repeat("x", 164), 200, ""},
		{"every legal character", "channel=Az09_-%3D@,.%3B&timeout=25", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustFetch(t, c, env.URL+"/v1/poll?"+tc.query)
			if a.Status != tc.status || a.Code != tc.code {
				t.Fatalf("status %d code %q, want %d %q; body %s", a.Status, a.Code, tc.status, tc.code, a.Body)
			}
			if a.Status != 200 && a.ErrCursor != nil {
				t.Fatalf("body %s: a 400 carries no cursor", a.Body)
			}
		})
	}
}

// A cursor whose history is gone, or that is ahead of the log, is a 410
// with code "reset" and the head to continue from.
func TestPollReset(t *testing.T) {
	t.Parallel()
	// A ring of 4 keeps these backlog reads in the database, which reads
	// the floor in the same statement as the rows (the feed would learn a
	// floor raised by hand only on its next read of the log).
	env := start(t, apitest.Options{Feed: store.FeedOptions{RingSize: 4}})
	head := insertMany(t, env, "a", 10)
	// Retention: seqs below 6 are gone.
	ctx := context.Background()
	if _, err := env.Pool.Exec(ctx, `UPDATE herald.sequencer_state SET floor_seq = 6`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Pool.Exec(ctx, `DELETE FROM herald.event_log WHERE seq < 6`); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, 2)
	for _, tc := range []struct {
		name   string
		cursor int64
		reset  bool
	}{
		{"cursor 0, history gone", 0, true},
		{"cursor below floor-1", 4, true},
		{"cursor floor-1 is still whole", 5, false},
		{"cursor inside retained history", 8, false},
		{"cursor one ahead of head", head + 1, true},
		{"cursor far ahead of head", 1<<63 - 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustFetch(t, c, pollURL(env.URL, []string{"a"}, itoa(tc.cursor), "5"))
			if !tc.reset {
				want := logSeqs(t, env, []string{"a"}, tc.cursor)
				if a.Status != http.StatusOK || !equalSeqs(a.seqs(), want) || a.Cursor != head {
					t.Fatalf("status %d body %s, want 200 with %v and cursor %d", a.Status, a.Body, want, head)
				}
				return
			}
			if a.Status != http.StatusGone || a.Code != "reset" {
				t.Fatalf("status %d code %q, want 410 reset; body %s", a.Status, a.Code, a.Body)
			}
			if a.ErrCursor == nil || *a.ErrCursor != head {
				t.Fatalf("body %s: want \"cursor\":\"%d\" (the head)", a.Body, head)
			}
			// The head it names is a cursor that works.
			next := mustPoll(t, c, pollURL(env.URL, []string{"a"}, itoa(*a.ErrCursor), "1"))
			if len(next.Events) != 0 || next.Cursor != head {
				t.Fatalf("poll from the reset cursor: %s", next.Body)
			}
		})
	}
}

// When the backlog cannot be read (the database is away), the poll says
// so: 503 "unavailable" with Retry-After, not an empty 200 that looks
// like "no events" to the client and hides the outage.
func TestPollDatabaseAway(t *testing.T) {
	t.Parallel()
	// A ring of 4 sends the backlog read for cursor 0 to the database.
	env := start(t, apitest.Options{Feed: store.FeedOptions{RingSize: 4}})
	insertMany(t, env, "a", 10)
	ctx := context.Background()
	// The backlog read joins sequencer_state; take it away for a moment
	// (the feed reads only event_log and stays up).
	if _, err := env.Pool.Exec(ctx, `ALTER TABLE herald.sequencer_state RENAME TO sequencer_state_away`); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, 2)
	u := pollURL(env.URL, []string{"a"}, "0", "5")
	a := mustFetch(t, c, u)
	if _, err := env.Pool.Exec(ctx, `ALTER TABLE herald.sequencer_state_away RENAME TO sequencer_state`); err != nil {
		t.Fatal(err)
	}
	if a.Status != http.StatusServiceUnavailable || a.Code != "unavailable" || a.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d code %q Retry-After %q, want 503 unavailable with Retry-After; body %s",
			a.Status, a.Code, a.Header.Get("Retry-After"), a.Body)
	}
	// Back: the same poll gets its events.
	if a := mustPoll(t, c, u); len(a.Events) != 10 || a.Cursor != 10 {
		t.Fatalf("after the database came back: %s", a.Body)
	}
}
