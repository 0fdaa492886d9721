package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type chunkReader struct {
	chunks []string
	end    error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, c.end
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunkReader) Close() error { return nil }

func TestClientFrameReader(t *testing.T) {
	drop := errors.New("connection reset")
	cases := []struct {
		name    string
		chunks  []string
		end     error
		max     int
		want    string
		wantErr error // nil means io.EOF
		errText string
	}{
		{name: "complete events", chunks: []string{"id: 1\ndata: a\n\n", "data: b\n\n"}, end: io.EOF,
			want: "id: 1\ndata: a\n\ndata: b\n\n"},
		{name: "event split across reads", chunks: []string{"data: a", "\n", "\n"}, end: io.EOF, want: "data: a\n\n"},
		{name: "fragment at clean EOF", chunks: []string{"data: a\n\ndata: b\n"}, end: io.EOF,
			want: "data: a\n\n", wantErr: errTruncated},
		{name: "fragment at read error", chunks: []string{"data: a\n\nid: 2\ndata: b"}, end: drop,
			want: "data: a\n\n", wantErr: drop},
		{name: "CRLF", chunks: []string{"data: a\r\n\r", "\ndata: b\r\n\r\n"}, end: io.EOF, want: "data: a\n\ndata: b\n\n"},
		{name: "CR", chunks: []string{"data: a\r\r", "data: b\r\r"}, end: io.EOF, want: "data: a\n\ndata: b\n\n"},
		{name: "CR then LF chunk is one line end", chunks: []string{"data: a\r", "\ndata: b\r\n\r\n"}, end: io.EOF,
			want: "data: a\ndata: b\n\n"},
		{name: "comment", chunks: []string{": ping\n\n"}, end: io.EOF, want: ": ping\n\n"},
		{name: "event over max", chunks: []string{"data: a\n\n", "data: " + strings.Repeat("x", 100)}, end: io.EOF, max: 50,
			want: "data: a\n\n", errText: "MaxEventSize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.max == 0 {
				tc.max = 1 << 20
			}
			f := newFrameReader(&chunkReader{chunks: tc.chunks, end: tc.end}, tc.max)
			got, err := io.ReadAll(iotest.OneByteReader(f))
			if string(got) != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			switch {
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("err = %v, want %q", err, tc.errText)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			}
		})
	}
}
