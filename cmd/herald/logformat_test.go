package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

// runChild runs `herald args...` as a child process (the test binary as
// herald, see asHerald) with only env, and returns its stdout and stderr
// writers and its exit channel; it is killed when t ends.
func runChild(t *testing.T, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append([]string{asHerald + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GORACE=" + gorace}, env...)
	p := &proc{cmd: cmd, stdout: newLines(), stderr: newLines(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// jsonObjects fails t unless every line of out is one JSON object, and
// returns their msg fields.
func jsonObjects(t *testing.T, name string, out *lines) []string {
	t.Helper()
	out.mu.Lock()
	all := append([]string(nil), out.all...)
	partial := string(out.partial)
	out.mu.Unlock()
	if partial != "" {
		all = append(all, partial)
	}
	var msgs []string
	for _, l := range all {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("%s line is not a JSON object: %q (%v)", name, l, err)
			continue
		}
		msg, _ := rec["msg"].(string)
		if _, ok := rec["time"]; !ok || rec["level"] == nil || msg == "" {
			t.Errorf("%s line lacks time, level or msg: %q", name, l)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// TestLogFormatJSON runs the real server process with HERALD_LOG_FORMAT=json
// (and, separately, --log-format json with a failing start) and checks that
// every line it prints on stdout and stderr, start-up and shutdown lines
// included, is a JSON object.
func TestLogFormatJSON(t *testing.T) {
	url := pgtest.URL(t)
	p := runChild(t, []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "debug"}, "DATABASE_URL="+url, "HERALD_LOG_FORMAT=json")
	const prefix = "herald listening on "
	l := p.stdout.wait(t, 0, 1, func(s string) bool {
		var rec struct{ Msg string }
		return json.Unmarshal([]byte(s), &rec) == nil && strings.HasPrefix(rec.Msg, prefix)
	}, 60*time.Second, p.exited)
	var rec struct{ Msg string }
	_ = json.Unmarshal([]byte(l[0]), &rec)
	base := strings.TrimPrefix(rec.Msg, prefix)
	waitReady(t, base, 30*time.Second)
	// A request that logs (debug level): an unknown route.
	if resp, err := http.Get(base + "/nope"); err == nil {
		resp.Body.Close()
	}
	p.signal(t, syscall.SIGTERM, 30*time.Second)
	if p.err != nil {
		t.Fatalf("herald exited with %v; stderr:\n%s", p.err, p.stderr.String())
	}
	stdout := jsonObjects(t, "stdout", p.stdout)
	stderr := jsonObjects(t, "stderr", p.stderr)
	joined := strings.Join(append(stdout, stderr...), "\n")
	for _, want := range []string{"herald listening on http://", "database schema current", "herald started", "shutting down"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no line with %q in json output:\n%s", want, joined)
		}
	}

	// A start that fails: the final error and nothing else, as JSON.
	bad := runChild(t, []string{"serve", "--log-format=json", "--listen", "127.0.0.1:-1"}, "DATABASE_URL="+url)
	<-bad.exited
	if bad.err == nil {
		t.Fatal("serve with a bad listen address exited 0")
	}
	msgs := jsonObjects(t, "stderr", bad.stderr)
	if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, "\n"), "listen on 127.0.0.1:-1") {
		t.Errorf("the error is not among the JSON lines: %q", msgs)
	}
	// A usage error: the flag package's usage text, line by line as JSON.
	usage := runChild(t, []string{"serve", "--no-such-flag"}, "HERALD_LOG_FORMAT=json")
	<-usage.exited
	if msgs := jsonObjects(t, "stderr", usage.stderr); len(msgs) < 3 {
		t.Errorf("usage error printed %d JSON lines, want the message and the flags", len(msgs))
	}
}

// TestLogFormatTextDefault: without the setting herald logs slog text, and
// a bad format is a usage error naming the variable.
func TestLogFormatTextDefault(t *testing.T) {
	var stdout, stderr strings.Builder
	log, err := newLogger(&stderr, "info", logText)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", 1)
	if s := stderr.String(); !strings.HasPrefix(s, "time=") || !strings.Contains(s, `msg=hello k=1`) {
		t.Errorf("text log line = %q", s)
	}
	err = run(t.Context(), []string{"serve", "--listen", "127.0.0.1:0"}, env("HERALD_LOG_FORMAT", "yaml"), &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "HERALD_LOG_FORMAT") {
		t.Errorf("HERALD_LOG_FORMAT=yaml: err %v (exit %d), want a usage error naming it", err, exitCode(err))
	}
	for _, c := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false}, {nil, "json", true}, {[]string{"--log-format", "json"}, "", true},
		{[]string{"serve", "--log-format=json"}, "text", true}, {[]string{"-log-format=text"}, "json", false},
	} {
		if got := jsonLogRequested(c.args, env("HERALD_LOG_FORMAT", c.env)); got != c.want {
			t.Errorf("jsonLogRequested(%q, %q) = %v", c.args, c.env, got)
		}
	}
}
