package client

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// chunked returns the input in pieces of at most n bytes, as a network would.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func (c *chunked) Close() error { return nil }

// FuzzFrameReader: whatever the server sends and however the network cuts
// it, the frame reader releases exactly the complete events (up to the last
// blank line), with line endings normalised, and never more than max bytes
// in one event (MaxEventSize: an event's normalised bytes up to and
// including the blank line that ends it); the first event over max ends
// the stream with the MaxEventSize error.
func FuzzFrameReader(f *testing.F) {
	for _, s := range []string{
		"id: 1\ndata: {}\n\n", "id: 1\r\ndata: x\r\n\r\nid: 2\rdata: y\r\r", "data: partial", ": ping\n\n",
		"retry: 10\n\nid: 3\nevent: reset\ndata: {\"cursor\":\"3\"}\n\nid: 4\ndata: cut",
	} {
		f.Add([]byte(s), uint8(3))
	}
	// 258 bytes in 16-byte chunks: the last chunk completes an event that
	// is over the 256-byte maximum only once it is complete.
	f.Add([]byte("data: "+strings.Repeat("x", 250)+"\n\n"), uint8(15))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const max = 256
		r := newFrameReader(&chunked{b: in, n: int(chunk%16) + 1}, max)
		out, err := io.ReadAll(r)
		oversize := err != nil && strings.Contains(err.Error(), "MaxEventSize")
		if err != nil && !errors.Is(err, errTruncated) && !oversize {
			t.Fatalf("error %v", err)
		}
		norm := bytes.ReplaceAll(bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
		if !bytes.HasPrefix(norm, out) {
			t.Fatalf("released %q, which is not a prefix of the normalised input %q", out, norm)
		}
		// Released up to a blank line: the end of an event (or of leading
		// blank lines).
		if n := len(out); n > 0 && !(out[n-1] == '\n' && (n == 1 || out[n-2] == '\n')) {
			t.Fatalf("released %q: does not end at an event boundary", out)
		}
		rest := norm[len(out):]
		if !oversize && (bytes.Contains(rest, []byte("\n\n")) || bytes.HasPrefix(rest, []byte("\n"))) {
			t.Fatalf("held back a complete event: released %q of %q", out, norm)
		}
		if errors.Is(err, errTruncated) != (len(rest) > 0 && !oversize) {
			t.Fatalf("truncation reported %v with %q left over", err, rest)
		}
		// The documented maximum: no released event is over max, and the
		// stream stops with the MaxEventSize error exactly when the next
		// event (complete, or the fragment left at the end) is over it.
		for _, n := range eventSizes(out) {
			if n > max {
				t.Fatalf("released an event of %d bytes, over the maximum %d: %q", n, max, out)
			}
		}
		next := len(rest)
		if sizes := eventSizes(rest); len(sizes) > 0 {
			next = sizes[0]
		}
		if oversize != (next > max) {
			t.Fatalf("MaxEventSize error %v, but the first event not released has %d bytes (max %d): %q", oversize, next, max, rest)
		}
	})
}

// eventSizes splits normalised SSE bytes at event boundaries (a line
// feed that starts an empty line, as the frame reader sees them) and
// returns the size of each complete event, the boundary included.
func eventSizes(b []byte) []int {
	var sizes []int
	start := 0
	for i, c := range b {
		if c == '\n' && (i == start || b[i-1] == '\n') {
			sizes = append(sizes, i+1-start)
			start = i + 1
		}
	}
	return sizes
}
