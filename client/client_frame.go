package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errTruncated ends a stream that closed cleanly in the middle of an event.
var errTruncated = errors.New("stream: connection closed inside an event; fragment discarded")

// frameReader sits between the response body and r3labs's EventStreamReader.
// It releases bytes only up to the end of the last complete event (the blank
// line that terminates it), so when the connection ends, cleanly or not, an
// unterminated fragment is discarded instead of reaching r3labs, whose
// scanner would otherwise dispatch it as a complete event. It also
// normalises CRLF and CR line endings to LF, so r3labs's event splitting
// agrees with the SSE spec's, and it bounds one event to max bytes.
type frameReader struct {
	body io.ReadCloser
	max  int

	buf       []byte // normalised bytes not yet returned
	ready     int    // buf[:ready] ends on an event boundary
	lineEmpty bool   // nothing seen yet on the current line
	prevCR    bool   // last byte was CR: a following LF belongs to it
	tooBig    bool   // an event completed in a chunk was over max: scan stopped before it
	err       error  // from body, returned once buf[:ready] is drained
	chunk     []byte
}

func newFrameReader(body io.ReadCloser, max int) *frameReader {
	return &frameReader{body: body, max: max, lineEmpty: true, chunk: make([]byte, 32<<10)}
}

func (f *frameReader) Read(p []byte) (int, error) {
	for f.ready == 0 {
		if f.err != nil {
			if f.err == io.EOF && len(f.buf) > 0 {
				return 0, errTruncated
			}
			return 0, f.err
		}
		n, err := f.body.Read(f.chunk)
		f.scan(f.chunk[:n])
		switch {
		case f.tooBig || len(f.buf)-f.ready > f.max:
			f.err = fmt.Errorf("stream: event larger than MaxEventSize (%d bytes)", f.max)
		case err != nil:
			f.err = err
		}
	}
	n := copy(p, f.buf[:f.ready])
	f.buf = f.buf[n:]
	f.ready -= n
	return n, nil
}

// scan appends chunk to buf with line endings normalised to LF and moves
// ready past every blank line. An event over max (its bytes up to and
// including the blank line that ends it) is not made ready, even when it
// completes within this chunk: scan sets tooBig and stops.
func (f *frameReader) scan(chunk []byte) {
	for len(chunk) > 0 && !f.tooBig {
		if f.prevCR {
			f.prevCR = false
			if chunk[0] == '\n' { // second half of CRLF, already emitted
				chunk = chunk[1:]
				continue
			}
		}
		i := bytes.IndexAny(chunk, "\r\n")
		if i < 0 {
			f.buf = append(f.buf, chunk...)
			f.lineEmpty = false
			return
		}
		if i > 0 {
			f.buf = append(f.buf, chunk[:i]...)
			f.lineEmpty = false
		}
		f.buf = append(f.buf, '\n')
		if f.lineEmpty {
			if len(f.buf)-f.ready > f.max {
				f.tooBig = true
				return
			}
			f.ready = len(f.buf)
		}
		f.lineEmpty = true
		f.prevCR = chunk[i] == '\r'
		chunk = chunk[i+1:]
	}
}

func (f *frameReader) Close() error { return f.body.Close() }
