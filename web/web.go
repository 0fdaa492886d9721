// Package web holds the browser side of herald: herald.js, the client that
// dashboards load from the server, and the demo page.
package web

import "embed"

// FS holds the files served under /herald.js and /demo/: herald.js, and
// the demo dashboard's page, script and style (demo/*, served by package
// demo).
//
//go:embed herald.js demo/*
var FS embed.FS
