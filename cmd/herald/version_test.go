package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/herald-dev/herald/api"
)

// TestVersionOutput: `herald version` prints the module version, the VCS
// revision (marked when the tree was modified) and the Go version.
func TestVersionOutput(t *testing.T) {
	b := api.BuildFrom(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/herald-dev/herald", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}})
	var out strings.Builder
	printBuild(&out, b)
	want := "herald v1.4.0\nmodule   github.com/herald-dev/herald\nrevision 0123abcd (modified)\ntime     2026-12-01T10:00:00Z\ngo       go1.26.8\n"
	if out.String() != want {
		t.Errorf("version output:\n%s\nwant:\n%s", out.String(), want)
	}
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"version"}, env(), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "go       "+runtime.Version()+"\n") || !strings.Contains(stdout.String(), "module   github.com/herald-dev/herald\n") {
		t.Errorf("herald version printed:\n%s", stdout.String())
	}
	if err := run(t.Context(), []string{"version", "extra"}, env(), &stdout, &stderr); exitCode(err) != 2 {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}
