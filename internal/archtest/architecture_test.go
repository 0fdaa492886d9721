// Package archtest guards herald's architecture (issue 18, docs/ARCHITECTURE.md)
// from the outside: it asks `go list` and the file tree, not the code, so it
// keeps holding after any refactoring. Each test names every violation it
// finds (the file and its length, the forbidden dependency and the import
// chain that pulls it in), not just the first.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/herald-dev/herald"

// Limits from issue 18: a file over these is too big to work in.
const (
	maxGoLines = 500 // non-test .go files anywhere in the module
	maxJSLines = 600 // .js/.mjs files under web/, tests excluded
)

// TestClientDependencies: an app that uses the Go client pulls in neither
// the Postgres driver, nor gin, nor the migration runner.
func TestClientDependencies(t *testing.T) {
	forbidDeps(t, "./client", []string{"-deps"}, "github.com/jackc/pgx", "github.com/gin-gonic/gin", "github.com/golang-migrate")
}

// TestHubDependencies: the in-memory hub runs without Postgres, and so do
// its tests (they use a fake in-memory Log).
func TestHubDependencies(t *testing.T) {
	t.Run("package", func(t *testing.T) { forbidDeps(t, "./hub", []string{"-deps"}, "github.com/jackc/pgx") })
	t.Run("tests", func(t *testing.T) { forbidDeps(t, "./hub", []string{"-deps", "-test"}, "github.com/jackc/pgx") })
}

// TestHubHasTests: the hub's overflow and reset races have their own tests,
// which `go test ./...` runs (files a build constraint excludes do not count).
func TestHubHasTests(t *testing.T) {
	pkgs, err := goList(t, "./hub")
	if err != nil {
		t.Fatalf("hub package: %v", err)
	}
	p := pkgs[0]
	if n := len(p.TestGoFiles) + len(p.XTestGoFiles); n == 0 {
		t.Errorf("%s has no _test.go files that go test runs (ignored by build constraints: %v)", p.ImportPath, p.IgnoredGoFiles)
	} else {
		t.Logf("%s: %d test files: %v", p.ImportPath, n, append(slices.Clone(p.TestGoFiles), p.XTestGoFiles...))
	}
}

// TestAPIDoesNotImportMigrations: api asks store whether the schema is
// current; only store knows the migrations.
func TestAPIDoesNotImportMigrations(t *testing.T) {
	pkgs, err := goList(t, "./api")
	if err != nil {
		t.Fatalf("api package: %v", err)
	}
	const forbidden = module + "/migrations"
	if !slices.Contains(pkgs[0].Imports, forbidden) {
		return
	}
	// Name the files, so the fix is obvious.
	root := moduleRoot(t)
	var files []string
	for _, f := range pkgs[0].GoFiles {
		if slices.Contains(fileImports(t, filepath.Join(root, "api", f)), forbidden) {
			files = append(files, "api/"+f)
		}
	}
	t.Errorf("api imports %s (in %s); ask store whether the schema is current instead", forbidden, strings.Join(files, ", "))
}

// TestServerBinaryHasNoLoadGenerator: the load generator is its own command
// (cmd/herald-bench); the production binary neither contains it nor offers
// `herald bench`.
func TestServerBinaryHasNoLoadGenerator(t *testing.T) {
	root := moduleRoot(t)
	bench, err := goList(t, "./cmd/herald-bench")
	switch {
	case err != nil:
		t.Errorf("the load generator's command: %v", err)
	case bench[0].Name != "main":
		t.Errorf("cmd/herald-bench is package %s, want a command (package main)", bench[0].Name)
	}

	pkgs, err := goList(t, "./cmd/herald", "-deps")
	if err != nil {
		t.Fatalf("cmd/herald: %v", err)
	}
	server := pkgs[len(pkgs)-1] // -deps lists the named package last
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, module+"/") && strings.Contains(p.ImportPath, "bench") {
			t.Errorf("cmd/herald depends on %s", p.ImportPath)
		}
	}
	var benchFiles []string
	for _, f := range server.GoFiles {
		if strings.HasPrefix(f, "bench") {
			benchFiles = append(benchFiles, f)
		}
		path := filepath.Join(root, "cmd", "herald", f)
		for _, pos := range caseLabels(t, path, "bench") {
			t.Errorf("%s: the server still has a `herald bench` subcommand (case %q)", rel(root, pos), "bench")
		}
	}
	if len(benchFiles) > 0 {
		t.Errorf("%d load generator files are part of the server binary (they belong in cmd/herald-bench): cmd/herald/{%s}", len(benchFiles), strings.Join(benchFiles, ","))
	}
}

// TestFileSizes: no non-test Go file over 500 lines, no web JS file over 600.
func TestFileSizes(t *testing.T) {
	root := moduleRoot(t)
	var checked int
	walk(t, root, func(path string) {
		name := filepath.Base(path)
		r := rel(root, path)
		var limit int
		switch {
		case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
			limit = maxGoLines
		case strings.HasPrefix(r, "web/") && (strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".mjs")) &&
			!strings.HasSuffix(name, "_test.mjs") && !strings.HasSuffix(name, "_test.js"):
			limit = maxJSLines
		default:
			return
		}
		checked++
		if n := countLines(t, path); n > limit {
			t.Errorf("%s: %d lines, over the limit of %d", r, n, limit)
		}
	})
	if checked == 0 {
		t.Fatal("no file checked: is the module root right?")
	}
	t.Logf("%d files checked", checked)
}

// TestNoCitationsOutsideRepo: comments cite docs/ in this repo, never a
// design document that is not in it, nor a path outside the repository. A
// relative path going up must name something that exists in the repo,
// relative to the citing file's directory or to the repo root: a test that
// reads the Grafana dashboard one directory up passes, a comment citing a
// shared design folder beside the repo fails wherever it is written.
func TestNoCitationsOutsideRepo(t *testing.T) {
	root := moduleRoot(t)
	design := "DESIGN" + ".md" // spelled apart so this file does not match itself
	upward := regexp.MustCompile(`(?:^|[^.\w])((?:\.\./)+[\w.\-/]*)`)
	exts := []string{".go", ".js", ".mjs", ".ts", ".sql", ".yml", ".yaml", ".conf", ".sh"}
	var checked int
	walk(t, root, func(path string) {
		name := filepath.Base(path)
		if !slices.Contains(exts, filepath.Ext(name)) && name != "Dockerfile" {
			return
		}
		checked++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			where := fmt.Sprintf("%s:%d", rel(root, path), i+1)
			if strings.Contains(line, design) {
				t.Errorf("%s cites %s, which is not in the repo (cite docs/): %s", where, design, strings.TrimSpace(line))
			}
			for _, sub := range upward.FindAllStringSubmatch(line, -1) {
				m := sub[1]
				if !inRepo(root, filepath.Dir(path), strings.TrimRight(m, ".")) {
					t.Errorf("%s cites %s, which is not a path in the repo: %s", where, m, strings.TrimSpace(line))
				}
			}
		}
	})
	if checked == 0 {
		t.Fatal("no file checked: is the module root right?")
	}
	t.Logf("%d files checked", checked)
}

// ---------------------------------------------------------------------------
// helpers

type pkg struct {
	ImportPath     string
	Name           string
	Dir            string
	GoFiles        []string
	TestGoFiles    []string
	XTestGoFiles   []string
	IgnoredGoFiles []string
	Imports        []string
	DepOnly        bool
	Error          *struct{ Err string }
}

// forbidDeps fails for every dependency of pattern under one of the
// forbidden module prefixes, and shows the import chain that brings it in.
func forbidDeps(t *testing.T, pattern string, listFlags []string, forbidden ...string) {
	t.Helper()
	pkgs, err := goList(t, pattern, listFlags...)
	if err != nil {
		t.Fatalf("%s: %v", pattern, err)
	}
	imports := map[string][]string{}
	for _, p := range pkgs {
		imports[p.ImportPath] = p.Imports
	}
	under := func(path string) string {
		for _, f := range forbidden {
			if path == f || strings.HasPrefix(path, f+"/") {
				return f
			}
		}
		return ""
	}
	top := pkgs[len(pkgs)-1].ImportPath
	total := map[string]int{}
	for _, p := range pkgs {
		if f := under(p.ImportPath); f != "" {
			total[f]++
		}
	}
	// Name the ways in: forbidden packages that an allowed package imports
	// (the rest come along with them).
	for _, p := range pkgs {
		if under(p.ImportPath) != "" {
			continue
		}
		for _, q := range p.Imports {
			if f := under(q); f != "" {
				t.Errorf("%s depends on %s (forbidden: %s), via %s", top, q, f, strings.Join(chain(imports, top, q), " → "))
			}
		}
	}
	for _, f := range forbidden {
		if total[f] > 0 {
			t.Errorf("%s depends on %d packages under %s in all", top, total[f], f)
		}
	}
	if len(total) == 0 {
		t.Logf("%s: %d dependencies, none under %s", top, len(pkgs)-1, strings.Join(forbidden, ", "))
	}
}

// chain is the shortest import path from one package to another.
func chain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var c []string
			for ; p != ""; p = prev[p] {
				c = append(c, p)
			}
			slices.Reverse(c)
			return c
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "?", to}
}

// goList runs `go list -json [flags] pattern` in the module root.
func goList(t *testing.T, pattern string, flags ...string) ([]pkg, error) {
	t.Helper()
	args := append(append([]string{"list", "-json"}, flags...), pattern)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go %s: %v", strings.Join(args, " "), err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go %s: %s: %s", strings.Join(args, " "), p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("go %s: no packages", strings.Join(args, " "))
	}
	return pkgs, nil
}

// goTool is the go command of the toolchain running this test: `go test`
// puts its GOROOT/bin first on the test's PATH (runtime.GOROOT is
// deprecated), and $GOROOT/bin/go is the fallback.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// moduleRoot is the directory of herald's go.mod, found upwards from the
// test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.Contains(string(b), "module "+module+"\n") {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("no go.mod of %s above the working directory", module)
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

// walk calls fn for every regular file of the module: it skips hidden
// directories (.git, .ci, .herald), node_modules, testdata and nested
// modules.
func walk(t *testing.T, root string, fn func(path string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == root {
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			fn(path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// inRepo reports whether the relative path p, from dir or from the repo
// root, names an existing file or directory inside root.
func inRepo(root, dir, p string) bool {
	for _, base := range []string{dir, root} {
		target := filepath.Join(base, p)
		r, err := filepath.Rel(root, target)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			continue
		}
		if _, err := os.Stat(target); err == nil {
			return true
		}
	}
	return false
}

// countLines counts lines as an editor shows them (wc -l, plus a last line
// without a newline).
func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func rel(root, path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

func fileImports(t *testing.T, path string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		out = append(out, p)
	}
	return out
}

// caseLabels returns where a switch case in path matches the string literal
// s (a subcommand's name).
func caseLabels(t *testing.T, path, s string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok {
			return true
		}
		for _, e := range cc.List {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, _ := strconv.Unquote(lit.Value); v == s {
					p := fset.Position(lit.Pos())
					out = append(out, fmt.Sprintf("%s:%d", p.Filename, p.Line))
				}
			}
		}
		return true
	})
	return out
}
