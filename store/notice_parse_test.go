package store

import "testing"

// TestParseLogNotice: a batch line is used only when it is exactly the
// consecutive run ending at the head; anything else is an error, and the
// feed reads the log instead.
func TestParseLogNotice(t *testing.T) {
	const at = `"2026-12-03T15:20:00.123456+00:00"`
	ok := []struct {
		payload string
		seqs    []int64
		floor   int64
	}{
		{"ab.7", nil, 0},
		{"7", nil, 0},
		{"ab.7\n{\"floor\":3,\"events\":[[7,\"c\",\"t\",{\"a\": 1}," + at + "]]}", []int64{7}, 3},
		{"ab.8\n{\"floor\":1,\"events\":[[7,\"c\",\"t\",{}," + at + "],[8,\"d\",\"u\",{\"x\": [1]}," + at + "]]}", []int64{7, 8}, 1},
	}
	for _, c := range ok {
		n, err := parseLogNotice(c.payload)
		if err != nil {
			t.Fatalf("%q: %v", c.payload, err)
		}
		if len(n.events) != len(c.seqs) || n.floor != c.floor {
			t.Fatalf("%q: %d events floor %d, want %v floor %d", c.payload, len(n.events), n.floor, c.seqs, c.floor)
		}
		for i, e := range n.events {
			if e.Seq != c.seqs[i] || e.Epoch != n.head.Epoch || e.At.IsZero() {
				t.Fatalf("%q: event %d is %+v", c.payload, i, e)
			}
		}
	}
	bad := []string{
		"",
		"ab.x",
		"ab.7\n",
		"ab.7\nnot json",
		"ab.7\n{\"floor\":1,\"events\":[]}",
		"ab.7\n{\"floor\":1,\"events\":[[6,\"c\",\"t\",{}," + at + "]]}",                               // does not end at the head
		"ab.8\n{\"floor\":1,\"events\":[[6,\"c\",\"t\",{}," + at + "],[8,\"c\",\"t\",{}," + at + "]]}", // not consecutive
		"ab.7\n{\"floor\":1,\"events\":[[7,\"\",\"t\",{}," + at + "]]}",                                // no channel
		"ab.7\n{\"floor\":1,\"events\":[[7,\"c\",\"t\",{},\"yesterday\"]]}",                            // bad time
		"ab.7\n{\"floor\":1,\"events\":[[7,\"c\",\"t\"]]}",                                             // short row
	}
	for _, p := range bad {
		if _, err := parseLogNotice(p); err == nil {
			t.Errorf("%q: parsed, want an error", p)
		}
	}
}
