package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestSlowAndOversizedHeaders: a client that dribbles its headers
// (slowloris) is cut off at the read-header timeout, and headers over the
// limit get 431, while a normal client is served meanwhile.
func TestSlowAndOversizedHeaders(t *testing.T) {
	r := start(t, []string{"serve", "--listen", "127.0.0.1:0", "--read-header-timeout", "500ms"}, env("DATABASE_URL", pgtest.URL(t)))
	base := r.serveURL(t, 60*time.Second)
	waitReady(t, base, 30*time.Second)
	addr := strings.TrimPrefix(base, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/poll?channel=a HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Meanwhile a normal client is served.
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a normal client during a slow one: %v", err)
	} else {
		resp.Body.Close()
	}
	// The slow one gets nothing useful and its connection ends.
	b, err := io.ReadAll(conn)
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after 10 s")
	}
	// Cut at the 500 ms read-header timeout: 5 s is 10x that, and far
	// below the 10 s read deadline that would mean "never cut".
	if took > 5*time.Second || strings.Contains(string(b), "200 OK") {
		t.Fatalf("slow client: %q after %v", b, took)
	}
	t.Logf("slow-header connection closed after %v", took.Round(time.Millisecond))

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	big := "GET /v1/poll?channel=a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n"
	if _, err := io.WriteString(c2, big); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB header: %d, want 431", resp.StatusCode)
	}
}
