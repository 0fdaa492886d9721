package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/web"
)

// TestDemoEmbedded: the demo page ships inside the binary, references only
// its own files and herald.js (no CDN: the page works offline and behind
// strict CSPs), and app.js parses as an ES module. The page itself is
// tested in Chromium by cmd/herald's TestDemoBrowser.
func TestDemoEmbedded(t *testing.T) {
	files := map[string]string{}
	for _, name := range []string{"demo/index.html", "demo/app.js", "demo/style.css"} {
		b, err := web.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for _, want := range []string{`href="/demo/style.css"`, `src="/demo/app.js"`, `id="conn-state"`, `id="transport"`, `id="offline-banner"`, `id="projects"`, `id="notices"`} {
		if !strings.Contains(files["demo/index.html"], want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if !strings.Contains(files["demo/app.js"], `import { subscribe } from "/herald.js";`) {
		t.Error(`app.js does not import subscribe from "/herald.js"`)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}[/"'\s)]`)
	for name, body := range files {
		for _, m := range url.FindAllString(body, -1) {
			if !strings.Contains(m, "www.w3.org") { // SVG's namespace is a name, not a fetch
				t.Errorf("%s refers to %q: the demo must not load anything from elsewhere", name, m)
			}
		}
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: app.js not syntax-checked")
	}
	dir := t.TempDir()
	mjs := filepath.Join(dir, "app.mjs")
	if err := os.WriteFile(mjs, []byte(files["demo/app.js"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, node, "--check", mjs).CombinedOutput(); err != nil {
		t.Errorf("node --check app.js: %v\n%s", err, out)
	}
}
