package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestUnsafeConfigRefused: a "null" CORS origin and API keys under 32
// bytes (or with a bad scope) stop serve at startup with a usage error
// that names the setting, before any database is touched.
func TestUnsafeConfigRefused(t *testing.T) {
	long := strings.Repeat("k", 32)
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"HERALD_CORS_ORIGINS", "https://a.example,null"}, `"null"`},
		{[]string{"HERALD_CORS_ORIGINS", "NULL"}, `"null"`},
		{[]string{"HERALD_API_KEYS", "short-key"}, "at least 32"},
		{[]string{"HERALD_API_KEYS", long + "," + strings.Repeat("x", 31)}, "at least 32"},
		{[]string{"HERALD_API_KEYS", long + ":build1*"}, "segment"},
	} {
		var out, errOut strings.Builder
		// Should the check be missing, serve must not get far: a
		// cancelled context and a database URL nothing answers at.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		kv := append([]string{"DATABASE_URL", "postgres://127.0.0.1:1/none?connect_timeout=1"}, c.kv...)
		err := run(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, env(kv...), &out, &errOut)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.kv[0]) {
			t.Errorf("%v: %v (exit %d), want a usage error naming %s and mentioning %s", c.kv, err, exitCode(err), c.kv[0], c.want)
		}
	}
}

// TestDemoTokenRefusedInProduction: herald demo and a production herald
// configured with the same HERALD_JWT_SECRET: the demo's /demo/token
// mints tokens the production server refuses (401), because the demo
// signs with its own random secret.
func TestDemoTokenRefusedInProduction(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	secret := "HERALD_JWT_SECRET=" + strings.Repeat("p", 32)
	demo := startProc(t, []string{"demo", "--listen", "127.0.0.1:0", "--pace", "0"}, "DATABASE_URL="+pgtest.URL(t), secret)
	prod := startProc(t, []string{"serve", "--listen", "127.0.0.1:0"}, "DATABASE_URL="+pgtest.URL(t), secret)
	resp, err := http.Get(demo.URL + "/demo/token")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || body.Token == "" {
		t.Fatalf("/demo/token: %d %v %+v", resp.StatusCode, err, body)
	}
	get := func(base string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/channels/private-project-1/events", nil)
		req.Header.Set("Authorization", "Bearer "+body.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(demo.URL); st != 200 {
		t.Fatalf("the demo refuses its own token: %d", st)
	}
	if st := get(prod.URL); st != http.StatusUnauthorized {
		t.Fatalf("production herald answered %d to a demo token, want 401", st)
	}
}

// TestMaxConnsCap: with --max-conns 2, two open connections fill the cap
// and a third is answered 503 (or closed) without being served; once one
// closes, a new connection is served again.
func TestMaxConnsCap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	p := startProc(t, []string{"serve", "--listen", "127.0.0.1:0", "--max-conns", "2"}, "DATABASE_URL="+pgtest.URL(t))
	addr := strings.TrimPrefix(p.URL, "http://")
	// healthz sends one request on a raw connection and reads the answer,
	// leaving the connection open; "" means it was closed unanswered.
	healthz := func(c net.Conn) string {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return ""
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Status
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	held := []net.Conn{dial(), dial()}
	for i, c := range held {
		if st := healthz(c); !strings.HasPrefix(st, "200") {
			t.Fatalf("connection %d under the cap: %q", i, st)
		}
	}
	if st := healthz(dial()); strings.HasPrefix(st, "200") {
		t.Fatalf("third connection served (%q) with --max-conns 2", st)
	} else {
		t.Logf("third connection: %q", st)
	}
	held[0].Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st := healthz(dial()); strings.HasPrefix(st, "200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served 30 s after one of the two was closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAdminAddr: with --admin-addr, /metrics and /readyz answer there and
// are gone from --listen, which keeps serving the API and /healthz.
func TestAdminAddr(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	p := startProc(t, []string{"serve", "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, "DATABASE_URL="+pgtest.URL(t))
	const prefix = "herald admin listening on "
	l := p.stdout.wait(t, 0, 1, func(s string) bool { return strings.HasPrefix(s, prefix) }, 30*time.Second, p.exited)
	admin := strings.TrimPrefix(l[0], prefix)
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitReady(t, admin, 60*time.Second)
	for path, want := range map[string][2]int{"/metrics": {404, 200}, "/readyz": {404, 200}, "/healthz": {200, 200}, "/v1/channels/a/events": {200, 404}} {
		if got := [2]int{get(p.URL + path), get(admin + path)}; got != want {
			t.Errorf("%s: main %d admin %d, want %d %d", path, got[0], got[1], want[0], want[1])
		}
	}
}
