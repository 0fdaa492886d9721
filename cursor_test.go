package herald_test

import (
	"testing"

	"github.com/herald-dev/herald"
)

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want herald.Cursor
		ok   bool
	}{
		{"0", herald.Cursor{Seq: 0}, true},
		{"123", herald.Cursor{Seq: 123}, true},
		{"ab12.123", herald.Cursor{Epoch: "ab12", Seq: 123}, true},
		{"a.0", herald.Cursor{Epoch: "a", Seq: 0}, true},
		{"abcdefghijklmnop.9223372036854775807", herald.Cursor{Epoch: "abcdefghijklmnop", Seq: 1<<63 - 1}, true},
		{"abcdefghijklmnopq.1", herald.Cursor{}, false},                    // epoch of 17
		{"000000000000000000000000000000000", herald.Cursor{Seq: 0}, true}, // leading zeros are in the grammar
		{"e.00000000000000000000000000000042", herald.Cursor{Epoch: "e", Seq: 42}, true},
		{"0000000000000000000009223372036854775808", herald.Cursor{}, false},
		{"9223372036854775808", herald.Cursor{}, false},
		{"ab.9223372036854775808", herald.Cursor{}, false},
		{"", herald.Cursor{}, false},
		{".5", herald.Cursor{}, false},
		{"ab.", herald.Cursor{}, false},
		{"Ab.5", herald.Cursor{}, false},
		{"a_b.5", herald.Cursor{}, false},
		{"ab.5.5", herald.Cursor{}, false},
		{"ab..5", herald.Cursor{}, false},
		{"ab.-5", herald.Cursor{}, false},
		{"ab.+5", herald.Cursor{}, false},
		{"-5", herald.Cursor{}, false},
		{" 5", herald.Cursor{}, false},
		{"5 ", herald.Cursor{}, false},
		{"ab.0x5", herald.Cursor{}, false},
	} {
		got, err := herald.ParseCursor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if back, err := herald.ParseCursor(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %q -> %+v, %v", tc.in, got.String(), back, err)
			}
		}
	}
	if s := (herald.Cursor{Epoch: "k3x", Seq: 42}).String(); s != "k3x.42" {
		t.Errorf("String = %q, want k3x.42", s)
	}
	if s := (herald.Cursor{Seq: 42}).String(); s != "42" {
		t.Errorf("bare String = %q, want 42", s)
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"0", "ab.5", "abcdefghijklmnopq.1", ".5", "ab.", "1.5.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := herald.ParseCursor(s)
		if err != nil {
			return
		}
		if c.Seq < 0 || (c.Epoch != "" && !herald.ValidEpoch(c.Epoch)) {
			t.Fatalf("ParseCursor(%q) = %+v", s, c)
		}
		if back, err := herald.ParseCursor(c.String()); err != nil || back != c {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, c.String(), back, err)
		}
	})
}
