// Package herald is the domain core: what an event is and how it looks on
// the wire, what a valid publish is, the Cursor {Epoch, Seq}, the error
// codes with their one table of HTTP statuses, and the Subscribe contract
// (Subscriber) that the SSE stream and long-poll rely on.
//
// It does no I/O. The in-memory fan-out is package hub, the Postgres
// adapter package store, the Go client package client; all of them build
// on these types so a Go app using the client pulls in no database driver.
// docs/ARCHITECTURE.md draws the whole flow.
package herald
