package web_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
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

// importRE finds the relative module specifiers of a module's static
// imports and re-exports (herald.js and its modules use no other).
var importRE = regexp.MustCompile(`(?m)^(?:import\s*|(?:import|export)\b[^;]*?\bfrom\s*)"(\.{1,2}/[^"]+)";`)

// TestModuleGraph: herald.js imports its modules relatively, so the
// server must have each one at the path the import resolves to: every
// import of herald.js and of its modules names an embedded file, every
// embedded herald/*.js is reached from herald.js (none is dead) and is
// named by herald.js itself (so a browser fetches them all in parallel
// right after herald.js, not one round trip per level), and no
// file of the client or the demo is over 600 lines (modules by idea, not
// one big file).
func TestModuleGraph(t *testing.T) {
	modules, err := fs.Glob(web.FS, "herald/*.js")
	if err != nil || len(modules) == 0 {
		t.Fatalf("no herald/*.js embedded: %v", err)
	}
	reached := map[string]bool{"herald.js": true}
	direct := map[string]bool{}
	queue := []string{"herald.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		b, err := web.FS.ReadFile(name)
		if err != nil {
			t.Errorf("%s is imported but not embedded: %v", name, err)
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			dep := path.Join(path.Dir(name), m[1])
			if name == "herald.js" {
				direct[dep] = true
			}
			if !reached[dep] {
				reached[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	for _, m := range modules {
		if !reached[m] {
			t.Errorf("%s is embedded but herald.js never imports it", m)
		} else if !direct[m] {
			t.Errorf("herald.js does not import %s itself: a browser would fetch it a round trip later", m)
		}
	}
	files := append([]string{"herald.js", "demo/app.js"}, modules...)
	for _, name := range files {
		b, err := web.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n > 600 {
			t.Errorf("%s has %d lines; split it (at most 600)", name, n)
		}
	}
}
