package main

import (
	"bufio"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestRetentionByAgeDefault: with no retention flag (the README's default
// `--retention 24h`), events sequenced more than 24 h ago are dropped and
// the floor rises to the first younger one; a cursor below the floor gets
// the README's reset on every read path (stream `event: reset`, long-poll
// and history 410 with the head), while a cursor at the floor still reads
// the young events. The rows are backdated rather than waited for: `at` is
// the sequencing time the age is measured from.
func TestRetentionByAgeDefault(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// A first herald sequences ten events, then stops.
	base, srv := serveOn(t, dbURL)
	insertN(t, pool, "ret", 10)
	waitHead(t, base, 10)
	if err := srv.stop(t, 60*time.Second); err != nil {
		t.Fatalf("first herald: %v", err)
	}
	// Seqs 1-6 were sequenced 25 h ago, seq 7 23 h ago: only 1-6 are past
	// the default age.
	if _, err := pool.Exec(ctx, `UPDATE herald.event_log SET at = now() - interval '25 hours' WHERE seq <= 6`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE herald.event_log SET at = now() - interval '23 hours' WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}

	// A new leader applies retention on its first step.
	base, _ = serveOn(t, dbURL)
	waitMetric(t, base, "herald_log_floor", 7)
	if f := metric(t, base, "herald_log_floor"); f != 7 {
		t.Fatalf("floor %v, want 7: seq 7 is 23 h old and must stay", f)
	}
	var minSeq, n, floor int64
	if err := pool.QueryRow(ctx, `SELECT min(seq), count(*) FROM herald.event_log`).Scan(&minSeq, &n); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT floor_seq FROM herald.sequencer_state`).Scan(&floor); err != nil {
		t.Fatal(err)
	}
	if minSeq != 7 || n != 4 || floor != 7 {
		t.Fatalf("event_log holds seqs from %d (%d rows), floor_seq %d; want 7-10 (4 rows), floor 7", minSeq, n, floor)
	}

	// At the floor (cursor 6: the next event is seq 7): the young events.
	p := poll(t, base, "channel=ret&cursor=6&timeout=1")
	if len(p.Events) != 4 || seqOf(p.Events[0].ID) != "7" || seqOf(p.Cursor) != "10" {
		t.Fatalf("poll after 6: %+v, want seqs 7-10 and cursor 10", p)
	}
	h := do(t, "GET", base+"/v1/channels/ret/events?after=6", "")
	var hist pollResult
	if h.status != 200 || json.Unmarshal(h.body, &hist) != nil || len(hist.Events) != 4 || seqOf(hist.Events[0].ID) != "7" {
		t.Fatalf("history after 6: %d %s, want seqs 7-10", h.status, h.body)
	}

	// Below the floor (cursor 5: seq 6 is gone): reset to the head.
	for _, path := range []string{"/v1/poll?channel=ret&cursor=5&timeout=1", "/v1/channels/ret/events?after=5"} {
		e := do(t, "GET", base+path, "").wantError(t, path, 410, "reset")
		if e.Cursor == nil || seqOf(*e.Cursor) != "10" {
			t.Fatalf("%s: 410 cursor %v, want the head 10", path, e.Cursor)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp := openSSE(t, sctx, base+"/v1/stream?channel=ret", "Last-Event-ID", "5")
	if resp.StatusCode != 200 {
		t.Fatalf("stream from 5: %s", resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	var frame []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream from 5 ended before a frame: %v (%q)", err, frame)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			if len(frame) > 0 && !strings.HasPrefix(frame[0], "retry:") {
				break
			}
			frame = nil
			continue
		}
		frame = append(frame, line)
	}
	got := strings.Join(frame, "\n")
	if !strings.Contains(got, "event: reset") || !regexp.MustCompile(`data: \{"cursor":"[a-z0-9]{1,16}\.10"\}`).MatchString(got) {
		t.Fatalf("stream from 5: first frame %q, want event: reset with data {\"cursor\":\"<epoch>.10\"}", got)
	}
}

// seqOf is the seq part of an id or cursor ("<epoch>.<seq>" or a bare seq).
func seqOf(id string) string { return id[strings.LastIndex(id, ".")+1:] }
