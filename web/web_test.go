package web_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/herald-dev/herald/web"
)

// TestHeraldJS runs herald.js's own unit tests (node --test) as part of
// `go test ./...`, so the one test command covers the browser client too.
func TestHeraldJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is required in CI to test herald.js (.ci/run installs it)")
		}
		t.Skip("node not installed; herald.js unit tests skipped (install Node.js >= 18 to run them)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", "herald_test.mjs", "herald_reconnect_test.mjs", "herald_opening_test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test herald_test.mjs herald_reconnect_test.mjs herald_opening_test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestEmbedded checks the server has the client to serve.
func TestEmbedded(t *testing.T) {
	b, err := web.FS.ReadFile("herald.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1000 {
		t.Fatalf("embedded herald.js is %d bytes", len(b))
	}
}
