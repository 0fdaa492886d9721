package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// asHerald makes the test binary run as herald: tests that need a real
// process (SIGTERM, SIGKILL) start os.Args[0] with it set, and TestMain
// hands over to main before any test flag is parsed.
const asHerald = "HERALD_TEST_RUN_AS_HERALD"

// proc is herald running as a child process.
type proc struct {
	cmd    *exec.Cmd
	stdout *lines
	stderr *lines
	exited chan struct{}
	err    error
	URL    string
}

// startProc runs `herald args...` as a child with only the given
// environment, waits for its listening line, and kills it when t ends.
func startProc(t *testing.T, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// Under -race the runtime sleeps a second before a process exits
	// (GORACE atexit_sleep_ms): shutdown timings are herald's without it.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append([]string{asHerald + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GORACE=" + gorace}, env...)
	p := &proc{cmd: cmd, stdout: newLines(), stderr: newLines(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("herald %v stderr:\n%s", args, p.stderr.String())
		}
	})
	const prefix = "herald listening on "
	l := p.stdout.wait(t, 0, 1, func(s string) bool { return strings.HasPrefix(s, prefix) }, 60*time.Second, p.exited)
	p.URL = strings.TrimPrefix(l[0], prefix)
	return p
}

// signal sends sig and, for SIGTERM, returns how long the process took to
// exit (failing t after within).
func (p *proc) signal(t *testing.T, sig syscall.Signal, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.exited:
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("herald did not exit within %v of %v; stderr:\n%s", within, sig, p.stderr.String())
		return 0
	}
}

// pollAnswer is one long-poll answer, decoded.
type pollAnswer struct {
	ids    []int64
	events []*herald.Event
	cursor int64
	err    error
}

// pollOnce long-polls base for channel after cursor.
func pollOnce(ctx context.Context, client *http.Client, base, channel string, cursor int64, timeout int) pollAnswer {
	u := fmt.Sprintf("%s/v1/poll?channel=%s&cursor=%d&timeout=%d", base, channel, cursor, timeout)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		return pollAnswer{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return pollAnswer{err: fmt.Errorf("poll: %d %s", resp.StatusCode, b)}
	}
	var body struct {
		Events []*herald.Event `json:"events"`
		Cursor string          `json:"cursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return pollAnswer{err: err}
	}
	a := pollAnswer{events: body.Events}
	for _, e := range body.Events {
		a.ids = append(a.ids, e.Seq)
	}
	c, err := herald.ParseCursor(body.Cursor)
	a.cursor, a.err = c.Seq, err
	return a
}

// metric reads one sample from base/metrics (-1 when absent).
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			return v
		}
	}
	return -1
}

// waitMetric polls base/metrics until name >= want.
func waitMetric(t *testing.T, base, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for v := metric(t, base, name); v < want; v = metric(t, base, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 60 s, want %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHead waits until base's feed has delivered up to seq.
func waitHead(t *testing.T, base string, seq int64) {
	t.Helper()
	waitMetric(t, base, "herald_log_head", float64(seq))
}
