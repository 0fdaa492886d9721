package main

import (
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/openapitest"
	"github.com/herald-dev/herald/store/pgtest"
	"github.com/herald-dev/herald/web"
)

// importRE finds the relative module specifiers of a JavaScript module's
// static imports and re-exports (herald.js and its modules use no other).
var importRE = regexp.MustCompile(`(?m)^(?:import\s*|(?:import|export)\b[^;]*?\bfrom\s*)"(\.{1,2}/[^"]+)";`)

// TestWebClientServed: /herald.js and every module it imports, directly
// or through another module, resolved as a browser resolves them, are
// served (all of web/herald/*.js, nothing missing) with the same headers: JavaScript, the 5-minute cache, and CORS
// for an allowed origin (a dashboard on another origin imports herald.js
// as a module, which browsers fetch in CORS mode, imports included), as
// api/openapi.json documents them; an unknown module is herald's 404.
func TestWebClientServed(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example"
	getenv := env(
		"DATABASE_URL", pgtest.URL(t),
		"HERALD_CORS_ORIGINS", origin,
		"HERALD_LOG_LEVEL", "warn",
	)
	srv := start(t, []string{"serve", "--listen", "127.0.0.1:0"}, getenv)
	base := srv.serveURL(t, 60*time.Second)
	waitReady(t, base, 30*time.Second)

	v := openapitest.Load(t)
	get := func(u string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		v.Response(t, req, resp) // documented in api/openapi.json (it puts the body back)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	entry, err := url.Parse(base + "/herald.js")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{entry.Path: true}
	queue := []*url.URL{entry}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		resp, body := get(u.String())
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != 200 || mt != "text/javascript" || resp.Header.Get("Cache-Control") != "public, max-age=300" ||
			resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("%s: %s, Content-Type %q, Cache-Control %q, Access-Control-Allow-Origin %q, Vary %q; want 200, text/javascript, public, max-age=300, %s, Origin",
				u.Path, resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Vary"), origin)
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(body, -1) {
			ref, err := url.Parse(m[1])
			if err != nil {
				t.Errorf("%s imports %q: %v", u.Path, m[1], err)
				continue
			}
			next := u.ResolveReference(ref)
			if !seen[next.Path] {
				seen[next.Path] = true
				queue = append(queue, next)
			}
		}
	}
	// What a browser loads is the whole client: every embedded module.
	modules, _ := fs.Glob(web.FS, "herald/*.js")
	want := append([]string{"/herald.js"}, modules...)
	for i, m := range modules {
		want[i+1] = "/" + m
	}
	var got []string
	for p := range seen {
		got = append(got, p)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("a browser importing /herald.js loads %v, want every embedded module: %v", got, want)
	}

	if resp, _ := get(base + "/herald/nope.js"); resp.StatusCode != 404 {
		t.Errorf("/herald/nope.js: %s, want 404", resp.Status)
	}
}
