package main

// herald behind Debian's real nginx, configured by deploy/nginx.conf (only
// the upstream address, the listen address and private paths changed).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store/pgtest"
)

// findNginx finds Debian's nginx (.ci/run installs it), failing in CI and
// skipping elsewhere when it is missing.
func findNginx(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is required in CI for the proxy tests (.ci/run installs Debian's nginx)")
	}
	t.Skip("nginx not found; proxy tests skipped (Debian/Ubuntu: apt-get install nginx)")
	return ""
}

type nginxProxy struct {
	URL  string // http://127.0.0.1:PORT
	addr string
	dir  string
}

// startNginx runs deploy/nginx.conf in front of the herald at upstream
// (host:port), on 127.0.0.1 and a free port, with its pid, logs and temp
// files in a private directory. It never touches the system nginx.
func startNginx(t *testing.T, upstream string) *nginxProxy {
	t.Helper()
	bin := findNginx(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	servers := regexp.MustCompile(`(?m)^(\s*)server herald1:8080( [^;]*);\n\s*server herald2:8080[^;]*;\n`)
	if !servers.MatchString(conf) {
		t.Fatal("deploy/nginx.conf: upstream servers herald1/herald2 not found; update this test")
	}
	conf = servers.ReplaceAllString(conf, "${1}server "+upstream+"${2};\n")
	for i := 0; ; i++ {
		dir := t.TempDir()
		addr := demoFreeAddr(t)
		c := strings.Replace(conf, "listen 80;", "listen "+addr+";", 1)
		c = strings.Replace(c, "http {", "http {\n    access_log off;\n"+
			"    client_body_temp_path temp_body;\n    proxy_temp_path temp_proxy;\n"+
			"    fastcgi_temp_path temp_fastcgi;\n    uwsgi_temp_path temp_uwsgi;\n    scgi_temp_path temp_scgi;\n", 1)
		c = "pid nginx.pid;\nerror_log error.log warn;\n" + strings.Replace(c, "worker_connections 16384;", "worker_connections 1024;", 1)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", path, "-g", "daemon off;")
		out := &lines{changed: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt) // fast shutdown of master and workers
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		// Ready when it accepts connections (or it exited: port taken).
		deadline := time.Now().Add(20 * time.Second)
		up := false
		for !up && time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
		if up {
			t.Cleanup(stop)
			return &nginxProxy{URL: "http://" + addr, addr: addr, dir: dir}
		}
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if i == 2 {
			t.Fatalf("nginx did not start:\n%s\n%s", out.String(), log)
		}
	}
}

// rawGet sends a GET over a fresh TCP connection and returns every byte
// the server sent until it closed the connection (or 3 s passed, for a
// stream that stays open).
func rawGet(t *testing.T, addr, path, accept string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\nCache-Control: no-cache\r\n\r\n", path, addr, accept)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestNginxStreamUpstreamDown: behind deploy/nginx.conf, a stream request
// made while herald is unreachable is answered by a dropped connection,
// not nginx's 502 (which would close a browser's EventSource for good);
// long-polls still get the 502 (fetch reads it and retries); herald's own
// 429 passes through to clients that read statuses, and EventSource
// clients get the in-band retry answer through nginx, unbuffered.
func TestNginxStreamUpstreamDown(t *testing.T) {
	dbURL := pgtest.URL(t)
	addr := demoFreeAddr(t)
	getenv := env("DATABASE_URL", dbURL, "HERALD_LOG_LEVEL", "warn", "HERALD_MAX_CONNS_PER_IP", "1", "HERALD_SHUTDOWN_TIMEOUT", "5s")
	h := start(t, []string{"serve", "--listen", addr}, getenv)
	h.serveURL(t, 60*time.Second)
	px := startNginx(t, addr)

	// Through nginx, a stream flows as it is written.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, px.URL+"/v1/stream?channel=proxied", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream through nginx: %v %v", resp, err)
	}
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `INSERT INTO herald.events (channel, type, data) VALUES ('proxied', 't', '{"n":1}')`); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			if strings.HasPrefix(l, "data: ") {
				got <- l
				return
			}
		}
	}()
	select {
	case l := <-got:
		if !strings.Contains(l, `"channel":"proxied"`) {
			t.Fatalf("through nginx: %q, want the notice", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the notice did not come through nginx within 10 s (buffered?)")
	}

	// The one connection allowed per address is taken (nginx's): herald's
	// own 429 reaches a client that reads statuses, and an EventSource
	// gets the 200 it retries.
	if ans := rawGet(t, px.addr, "/v1/stream?channel=proxied", "application/json"); !strings.HasPrefix(ans, "HTTP/1.1 429 ") || !strings.Contains(ans, "too_many_connections") {
		t.Fatalf("second stream, Accept: application/json, through nginx: %q, want herald's 429", ans)
	}
	if ans := rawGet(t, px.addr, "/v1/stream?channel=proxied", "text/event-stream"); !strings.HasPrefix(ans, "HTTP/1.1 200 ") ||
		!strings.Contains(ans, "\r\n\r\nretry: 5000\n\nevent: unavailable\ndata: {\"status\":429,") {
		t.Fatalf("second stream, Accept: text/event-stream, through nginx: %q, want 200 with retry: and an unavailable event", ans)
	}
	cancel()
	resp.Body.Close()

	// herald goes away.
	if err := h.stop(t, 30*time.Second); err != nil {
		t.Fatalf("herald: %v", err)
	}
	for _, accept := range []string{"text/event-stream", "*/*"} {
		if ans := rawGet(t, px.addr, "/v1/stream?channel=proxied", accept); ans != "" {
			t.Fatalf("stream through nginx with herald down (Accept %s): got %q, want the connection closed with no answer (a network error EventSource retries)", accept, ans)
		}
	}
	if ans := rawGet(t, px.addr, "/v1/poll?channel=proxied", "application/json"); !strings.HasPrefix(ans, "HTTP/1.1 502 ") {
		t.Fatalf("poll through nginx with herald down: %q, want 502", ans)
	}
}
