package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// env is a getenv over a fixed map: the tests never read the real
// environment, so a developer's DATABASE_URL cannot leak in.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var (
	buildOnce sync.Once
	heraldBin string
	buildErr  error
	buildDir  string
)

// heraldBinary builds the server from ./cmd/herald once per test binary: the
// bench measures a real herald process, and the server binary no longer
// holds the bench.
func heraldBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "herald-bench-test-"); buildErr != nil {
			return
		}
		heraldBin = filepath.Join(buildDir, "herald")
		out, err := exec.Command("go", "build", "-o", heraldBin, "../herald").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatalf("build herald: %v", buildErr)
	}
	return heraldBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// proc is herald running as a child process.
type proc struct {
	cmd *exec.Cmd
	URL string
}

// startProc runs `herald args...` as a child with only the given
// environment, waits for its listening line, and kills it when t ends.
func startProc(t *testing.T, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(heraldBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	exited := make(chan struct{})
	listening := make(chan string, 1)
	go func() {
		const prefix = "herald listening on "
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				listening <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("herald %v stderr:\n%s", args, stderr.String())
		}
	})
	select {
	case u := <-listening:
		return &proc{cmd: cmd, URL: u}
	case <-exited:
		t.Fatalf("herald exited before listening: %s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("herald not listening after 60s")
	}
	return nil
}

// waitReady polls base/readyz until 200, failing t at the deadline.
func waitReady(t *testing.T, base string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status + " " + string(b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after %v: %s", base, timeout, last)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a readiness guess
	}
}
