package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestPublishCreatedBody: POST /v1/events answers 201 with exactly
// {"ids":[...]}: one inbox id per event, in body order, newer than any row
// inserted before and older than any inserted after; the events then
// reach the log in that order with their data. Over 1,000 events is 413
// too_many_events and publishes nothing.
func TestPublishCreatedBody(t *testing.T) {
	dbURL := pgtest.URL(t)
	base, _ := serveOn(t, dbURL, "HERALD_API_KEYS", publishKey)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	inboxID := func() int64 {
		t.Helper()
		var id int64
		if err := pool.QueryRow(context.Background(),
			`INSERT INTO herald.events (channel, data) VALUES ('pub-other', '{}') RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	publish := func(body string) answer {
		return do(t, "POST", base+"/v1/events", body, "Authorization", "Bearer "+publishKey, "Content-Type", "application/json")
	}

	before := inboxID()
	bodies := []string{
		`{"channel":"pub","type":"build.status","data":{"build":1,"state":"PASSED"}}`,
		`[{"channel":"pub","data":{"build":2}},{"channel":"pub","data":{"build":3}}]`,
		`{"events":[{"channel":"pub","data":{"build":4}},{"channel":"pub","data":{"build":5}},{"channel":"pub","data":{"build":6}}]}`,
	}
	var all []int64
	for i, b := range bodies {
		a := publish(b)
		if a.status != http.StatusCreated {
			t.Fatalf("publish %d: %d %s, want 201", i, a.status, a.body)
		}
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("publish %d: Content-Type %q", i, ct)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(a.body, &raw); err != nil || len(raw) != 1 || raw["ids"] == nil {
			t.Fatalf("publish %d: body %s, want exactly {\"ids\":[...]}", i, a.body)
		}
		var ids []int64
		if err := json.Unmarshal(raw["ids"], &ids); err != nil {
			t.Fatalf("publish %d: ids %s are not numbers: %v", i, raw["ids"], err)
		}
		if len(ids) != i+1 {
			t.Fatalf("publish %d: %d ids for %d events: %s", i, len(ids), i+1, a.body)
		}
		all = append(all, ids...)
	}
	after := inboxID()
	for i, id := range all {
		if id <= before || id >= after || (i > 0 && id <= all[i-1]) {
			t.Fatalf("ids %v: want ascending inbox ids between %d and %d (rows inserted before and after)", all, before, after)
		}
	}

	// The seqs follow: the six notices in body order on the channel.
	waitHead(t, base, 8) // six published, two inserted
	p := poll(t, base, "channel=pub&cursor=0&timeout=1")
	if len(p.Events) != 6 {
		t.Fatalf("poll: %d events on pub, want 6", len(p.Events))
	}
	for i, e := range p.Events {
		if want := fmt.Sprintf(`{"build":%d`, i+1); !strings.HasPrefix(string(e.Data), want) {
			t.Fatalf("event %d: data %s, want build %d", i, e.Data, i+1)
		}
	}
	if p.Events[0].Type != "build.status" || p.Events[1].Type != "message" {
		t.Fatalf("types %q, %q; want build.status and the default message", p.Events[0].Type, p.Events[1].Type)
	}

	// 1,001 events: 413 too_many_events, and none of them published.
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 1001 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"channel":"pub-big","data":{}}`)
	}
	sb.WriteString("]")
	publish(sb.String()).wantError(t, "1,001 events", http.StatusRequestEntityTooLarge, "too_many_events")
	var n int64
	if err := pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM herald.events WHERE channel = 'pub-big') + (SELECT count(*) FROM herald.event_log WHERE channel = 'pub-big')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d events of the refused batch were published", n)
	}
	// The limit is 1,000: exactly that many is accepted.
	a := publish(strings.Replace(sb.String(), `[{"channel":"pub-big","data":{}},`, "[", 1))
	var ok struct{ IDs []int64 }
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &ok) != nil || len(ok.IDs) != 1000 {
		t.Fatalf("1,000 events: %d with %d ids, want 201 with 1000", a.status, len(ok.IDs))
	}
}

// publishKey is a server key of the 32 bytes herald requires.
const publishKey = "publish-key-0123456789abcdef0123456789"
