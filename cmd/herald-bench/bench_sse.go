package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// sseConn is the load generator's lean SSE subscriber: one TCP connection,
// one goroutine, a hand-written request and a line parser over the
// response body, so that thousands of subscribers cost the machine little
// next to the server they measure. (client.Subscribe, the real client, is
// used where its behaviour is what is measured: the resume scenario.)
type sseConn struct {
	conn net.Conn
	body *bufio.Reader
	// ready is closed once the first line of the body has arrived: the
	// server has registered the subscriber (herald sends retry:, nchan a
	// ": hi" comment) and events published from now on reach it.
	ready chan struct{}
}

// sseEvent is called for each dispatched event; id and data are only
// valid during the call.
type sseEvent func(id, data []byte)

// dialSSE connects to base+path (path with its query) and reads the
// response headers. lastID, if set, is sent as Last-Event-ID.
func dialSSE(ctx context.Context, base *url.URL, path, lastID string) (*sseConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", base.Host)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Close with a reset: no TIME_WAIT, so thousands of connections
		// opened run after run do not exhaust the local ports.
		_ = tc.SetLinger(0)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + base.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: herald-bench\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	req += "\r\n"
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("GET %s: %s %s", path, resp.Status, bytes.TrimSpace(b))
	}
	_ = conn.SetDeadline(time.Time{})
	// resp.Body undoes chunked encoding (herald) or reads to EOF (nchan).
	return &sseConn{conn: conn, body: bufio.NewReaderSize(resp.Body, 8192), ready: make(chan struct{})}, nil
}

// Close drops the connection; read then returns.
func (c *sseConn) Close() error { return c.conn.Close() }

// read parses the stream until it ends, calling fn for each event with
// data (comments and data-less blocks are not dispatched, as in
// EventSource). It returns the error that ended the stream.
func (c *sseConn) read(fn sseEvent) error {
	var id, data, long []byte
	hasData, first := false, true
	for {
		line, err := c.body.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = c.body.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if first {
			close(c.ready)
			first = false
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData {
				fn(id, data)
			}
			data, hasData = data[:0], false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "id":
			id = append(id[:0], value...)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
}

// jsonInt finds "key": followed by an integer anywhere in b and returns
// it. The bench's payloads are flat objects of integers with distinct
// keys, and herald's envelope has no other field of those names, so a scan
// does what decoding would, at a fraction of the cost per delivery.
func jsonInt(b []byte, key string) (int64, bool) {
	var pat [16]byte
	p := append(append(append(pat[:0], '"'), key...), '"', ':')
	i := bytes.Index(b, p)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(p):]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	var n int64
	digits := 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		n = n*10 + int64(b[digits]-'0')
	}
	return n, digits > 0
}
