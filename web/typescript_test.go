package web_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	heraldweb "github.com/herald-dev/herald/web"
)

// tool finds a pinned node tool that .ci/run installs in .ci/tools; in CI
// a missing one fails the test, elsewhere it skips.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", ".ci", "tools", "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs it: npm ci --prefix .ci/tools): %v", name, err)
		}
		t.Skipf("%s not installed; run: npm ci --prefix .ci/tools", name)
	}
	return p
}

func runIn(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const consumerTS = `import { subscribe, STORAGE_KEY, DEFAULTS, type Notice, type State, type Subscription } from "@herald-dev/herald";

interface Build { build: number; state: "QUEUED" | "STARTED" | "PASSED" | "FAILED" }

export function watch(token: string, refetch: (build: number) => void): Subscription {
  return subscribe<Build>({
    url: "https://herald.example",
    channels: ["private-project-3"],
    token,
    authorize: async () => token,
    onNotice: (n: Notice<Build>) => refetch(n.data.build),
    onReset: ({ cursor }) => console.log("refetch everything, then continue from", cursor),
    onStateChange: (state: State, { transport, error }) => console.log(state, transport, error?.code),
    pollTimeout: 20,
  });
}

const cursor: string | null = null as Subscription["cursor"];
console.log(STORAGE_KEY, DEFAULTS.pollTimeout, cursor);
`

// misuseTS must not type-check: the types are precise, not any.
const misuseTS = `import { subscribe } from "@herald-dev/herald";
subscribe({ channels: [42] });
subscribe({ channels: ["a"], onStateChange: (s) => { const n: number = s; } });
subscribe({ channels: ["a"], onNotice: (n) => { const id: number = n.id; } });
subscribe({ url: "x" });
`

// TestTypeScriptPackage packs web/ as the npm package, installs it into a
// fresh consumer project, type-checks the consumer with tsc --strict
// (under both bundler and Node's module resolution, which read
// package.json's "exports" and "types"), checks that misuse is a type
// error, and bundles the consumer with esbuild and runs the bundle.
func TestTypeScriptPackage(t *testing.T) {
	tsc, esbuild := tool(t, "tsc"), tool(t, "esbuild")
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("npm is required in CI")
		}
		t.Skip("npm not installed")
	}
	node, _ := exec.LookPath("node")
	dir := t.TempDir()
	web, _ := filepath.Abs(".")
	out, err := runIn(t, dir, npm, "pack", "--silent", "--pack-destination", dir, web)
	if err != nil {
		t.Fatalf("npm pack web/: %v\n%s", err, out)
	}
	tarball := filepath.Join(dir, strings.TrimSpace(out))
	consumer := filepath.Join(dir, "consumer")
	if err := os.MkdirAll(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(consumer, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"name":"consumer","private":true,"type":"module"}`)
	if out, err := runIn(t, consumer, npm, "install", "--offline", "--no-audit", "--no-fund", "--silent", tarball); err != nil {
		t.Fatalf("npm install %s: %v\n%s", tarball, err, out)
	}
	// The package is herald.js, the modules it imports (herald/*.js, as
	// served at /herald/), its types and package.json: nothing else.
	pkg := filepath.Join(consumer, "node_modules", "@herald-dev", "herald")
	var files []string
	err = filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(pkg, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	modules, _ := fs.Glob(heraldweb.FS, "herald/*.js")
	want := append([]string{"herald.d.ts", "herald.js", "package.json"}, modules...)
	sort.Strings(files)
	sort.Strings(want)
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("the package installs %v, want %v", files, want)
	}
	write("consumer.ts", consumerTS)
	write("misuse.ts", misuseTS)
	base := []string{"--strict", "--noEmit", "--target", "es2022", "--lib", "es2022,dom", "--skipLibCheck", "false"}
	for _, res := range [][]string{{"--module", "esnext", "--moduleResolution", "bundler"}, {"--module", "nodenext", "--moduleResolution", "nodenext"}} {
		args := append(append(append([]string{}, base...), res...), "consumer.ts")
		if out, err := runIn(t, consumer, tsc, args...); err != nil {
			t.Errorf("tsc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	args := append(append([]string{}, base...), "--module", "esnext", "--moduleResolution", "bundler", "misuse.ts")
	out, err = runIn(t, consumer, tsc, args...)
	if err == nil {
		t.Error("tsc accepted misuse.ts: the declarations are too loose")
	}
	for _, want := range []string{"misuse.ts(2,", "misuse.ts(3,", "misuse.ts(4,", "misuse.ts(5,"} {
		if !strings.Contains(out, want) {
			t.Errorf("tsc did not flag line %s of misuse.ts:\n%s", want[10:11], out)
		}
	}
	if out, err := runIn(t, consumer, esbuild, "consumer.ts", "--bundle", "--format=esm", "--platform=browser", "--outfile=out.js", "--log-level=warning"); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	bundle, err := os.ReadFile(filepath.Join(consumer, "out.js"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(bundle), `from "@herald-dev/herald"`) || !strings.Contains(string(bundle), "function subscribe(") {
		t.Error("the bundle does not inline herald.js")
	}
	if node != "" {
		out, err := runIn(t, consumer, node, "out.js")
		if err != nil || strings.TrimSpace(out) != "herald.transport 20 null" {
			t.Errorf("node out.js: %v: %q, want %q", err, out, "herald.transport 20 null")
		}
	}
}
