// Package web holds the browser side of herald: herald.js, the client that
// dashboards load from the server, and the demo page.
package web

import "embed"

// FS holds the files served under /herald.js, /herald/ and /demo/:
// herald.js, the entry module; herald/*.js, the modules it imports
// relatively (so a browser that loaded /herald.js asks for /herald/*.js);
// and the demo dashboard's page, script and style (demo/*, served by
// package demo).
//
//go:embed herald.js herald/*.js demo/*
var FS embed.FS
