package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store/pgtest"
)

// sseBlock is one block read off a raw socket.
type sseBlock struct {
	id, event, data string
	hasID, retry    bool
}

// rawSSE is an SSE client on a bare TCP connection, as a browser's
// EventSource would speak it: no library between the test and the bytes.
type rawSSE struct {
	conn net.Conn
	br   *bufio.Reader
	body *bufio.Reader
}

// dialRawSSE sends GET path over a new TCP connection to base, with
// Last-Event-ID when lastID is set, and reads the response headers.
func dialRawSSE(t *testing.T, base, path, lastID string) *rawSSE {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatalf("write request: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("status line %q, %v", status, err)
	}
	chunked := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, _ := strings.Cut(line, ":"); strings.EqualFold(k, "Transfer-Encoding") && strings.Contains(v, "chunked") {
			chunked = true
		}
	}
	s := &rawSSE{conn: conn, br: br, body: br}
	if chunked {
		s.body = bufio.NewReader(httputil.NewChunkedReader(br))
	}
	return s
}

// next reads one block (up to a blank line).
func (s *rawSSE) next() (sseBlock, error) {
	var b sseBlock
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			return b, err
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			return b, nil
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			b.id, b.hasID = value, true
		case "event":
			b.event = value
		case "data":
			b.data = value
		case "retry":
			b.retry = true
		}
	}
}

// TestOpeningIDSurvivesSIGKILL: a client that came without a cursor gets
// one in the opening block, before any notice. herald is SIGKILLed while
// the client has nothing but that id; notices are committed while no
// herald runs; a new herald starts; the client reconnects with the id it
// got and receives every missed notice exactly once, in order. Without the
// opening id it would have reconnected with no Last-Event-ID and started
// live, missing them all.
func TestOpeningIDSurvivesSIGKILL(t *testing.T) {
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	p1 := startProc(t, args, "DATABASE_URL="+dbURL)
	insertN(t, pool, "other", 3) // the log is not empty: the head is 3
	waitHead(t, p1.URL, 3)

	c1 := dialRawSSE(t, p1.URL, "/v1/stream?channel=watched", "")
	open, err := c1.next()
	if err != nil {
		t.Fatalf("opening block: %v", err)
	}
	if !open.retry || !open.hasID || open.data != "" {
		t.Fatalf("opening block %+v: want retry: and id: and no data", open)
	}
	cur, err := herald.ParseCursor(open.id)
	if err != nil || cur.Epoch == "" || cur.Seq != 3 {
		t.Fatalf("opening id %q: want \"<epoch>.3\" (the head when the client subscribed)", open.id)
	}

	p1.signal(t, syscall.SIGKILL, 10*time.Second)
	if _, err := c1.next(); err == nil {
		t.Fatal("the stream went on after SIGKILL")
	}
	// Committed while no herald runs.
	const missed = 7
	insertN(t, pool, "watched", missed)
	insertN(t, pool, "other", 2)

	p2 := startProc(t, args, "DATABASE_URL="+dbURL)
	c2 := dialRawSSE(t, p2.URL, "/v1/stream?channel=watched", open.id)
	// One more, live, after the reconnect: it must follow the missed ones.
	live := make(chan error, 1)
	go func() {
		_, err := pool.Exec(context.Background(), `INSERT INTO herald.events (channel, data) VALUES ('watched', '{"i":1}')`)
		live <- err
	}()
	defer func() {
		if err := <-live; err != nil {
			t.Errorf("live insert: %v", err)
		}
	}()
	var got []int64
	for len(got) < missed+1 {
		b, err := c2.next()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if b.event == "reset" {
			t.Fatalf("reset %q after reconnecting with the opening id", b.data)
		}
		if b.data == "" {
			continue
		}
		var ev struct {
			ID   string         `json:"id"`
			Data map[string]int `json:"data"`
		}
		if err := json.Unmarshal([]byte(b.data), &ev); err != nil {
			t.Fatalf("data %q: %v", b.data, err)
		}
		if ev.ID != b.id {
			t.Fatalf("block id %q, data id %q", b.id, ev.ID)
		}
		c, err := herald.ParseCursor(ev.ID)
		if err != nil || c.Epoch != cur.Epoch {
			t.Fatalf("id %q: want epoch %q", ev.ID, cur.Epoch)
		}
		got = append(got, int64(ev.Data["i"]))
	}
	// insertN numbers rows 1..n: the missed 1..7, then the live 1.
	want := fmt.Sprint([]int64{1, 2, 3, 4, 5, 6, 7, 1})
	if fmt.Sprint(got) != want {
		t.Fatalf("received %v, want %s: every missed notice once, in order, then the live one", got, want)
	}
	// Nothing more for this channel: no duplicate arrives after the live one.
	_ = c2.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		b, err := c2.next()
		if err != nil {
			break
		}
		if b.data != "" {
			t.Fatalf("extra notice %q", b.data)
		}
	}
}
