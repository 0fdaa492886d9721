package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/store"
)

// TestNoticeCarriesTheBatch: a caught-up feed dispatches a small batch from
// the sequencer's notice without reading the log, a batch too large for a
// notice is read from the log, and both give the events the log holds, byte
// for byte on the wire.
func TestNoticeCarriesTheBatch(t *testing.T) {
	// No safety-net read during the test: every read is a notice's doing.
	n, pool, _ := setupWith(t, store.SequencerOptions{}, store.FeedOptions{Poll: time.Hour})
	ctx := context.Background()
	sub, err := n.feed.Subscribe(ctx, []string{"a"}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	datas := []string{
		`{"build": 1, "state": "STARTED"}`,
		`{"text": "ünïcödé \"quoted\" \\ back\nslash", "n": 1.5e3}`,
		`{"nested": {"a": [1, 2, {"b": null}]}, "t": true}`,
		`{}`,
	}
	// A first event settles the feed: its session's own first read (after
	// Ready) and any epoch notice from the sequencer's start are behind it.
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ('a', 'warm', '{}')`); err != nil {
		t.Fatal(err)
	}
	live := collect(t, sub, 1, 10*time.Second)
	before := n.db.LogReads()
	for i := range 12 {
		if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ('a', $1, $2)`,
			fmt.Sprintf("t%d", i), datas[i%len(datas)]); err != nil {
			t.Fatal(err)
		}
		live = append(live, collect(t, sub, 1, 10*time.Second)...)
	}
	if d := n.db.LogReads() - before; d != 0 {
		t.Fatalf("12 single-event commits made the caught-up feed read the log %d times, want 0 (the notice carries the batch)", d)
	}

	// Three 4 KiB events in one transaction: over a notice's room.
	big := `{"pad": "` + strings.Repeat("x", 4000) + `"}`
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, type, data) SELECT 'a', 'big', $1::jsonb FROM generate_series(1, 3)`, big); err != nil {
		t.Fatal(err)
	}
	live = append(live, collect(t, sub, 3, 10*time.Second)...)
	if d := n.db.LogReads() - before; d < 1 {
		t.Fatalf("a 12 KiB batch was dispatched with %d log reads, want it read from the log", d)
	}

	// Everything again, from the log.
	page, err := n.db.After(ctx, 0, []string{"a"}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 16 || len(live) != 16 {
		t.Fatalf("log has %d events, live %d, want 16", len(page.Events), len(live))
	}
	for i, e := range page.Events {
		if got, want := string(live[i].JSON()), string(e.JSON()); got != want {
			t.Fatalf("event %d live:\n%s\nfrom the log:\n%s", i+1, got, want)
		}
	}
}
