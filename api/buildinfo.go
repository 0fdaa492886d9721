package api

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Build says which herald is running: operators ask it of `herald version`
// and of the herald_build_info metric when several releases are deployed.
type Build struct {
	Module    string // module path
	Version   string // module version, "(devel)" for a plain go build
	Revision  string // VCS commit, "unknown" when the binary was built without VCS information
	Time      string // commit time (RFC 3339), "" when unknown
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string // toolchain that built the binary
}

// ReadBuild reads the running binary's build information.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Module: "github.com/herald-dev/herald", Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	}
	return BuildFrom(bi)
}

// BuildFrom extracts Build from bi (split out so tests can feed it any
// build information).
func BuildFrom(bi *debug.BuildInfo) Build {
	b := Build{Module: bi.Main.Path, Version: bi.Main.Version, Revision: "unknown", GoVersion: bi.GoVersion}
	if b.Module == "" {
		b.Module = bi.Path
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// buildInfoGauge is herald_build_info: always 1, the build in its labels,
// so dashboards can show and join on the running version.
func buildInfoGauge(b Build) prometheus.Collector {
	modified := "false"
	if b.Modified {
		modified = "true"
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_build_info",
		Help: "Always 1; the labels say which herald build is running."}, []string{"version", "revision", "goversion", "modified"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion, modified).Set(1)
	return g
}
