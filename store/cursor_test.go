package store_test

import (
	"testing"

	"github.com/herald-dev/herald/store"
)

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want store.Cursor
		ok   bool
	}{
		{"0", store.Cursor{Seq: 0}, true},
		{"123", store.Cursor{Seq: 123}, true},
		{"ab12.123", store.Cursor{Epoch: "ab12", Seq: 123}, true},
		{"a.0", store.Cursor{Epoch: "a", Seq: 0}, true},
		{"abcdefghijklmnop.9223372036854775807", store.Cursor{Epoch: "abcdefghijklmnop", Seq: 1<<63 - 1}, true},
		{"abcdefghijklmnopq.1", store.Cursor{}, false}, // epoch of 17
		{"9223372036854775808", store.Cursor{}, false},
		{"ab.9223372036854775808", store.Cursor{}, false},
		{"", store.Cursor{}, false},
		{".5", store.Cursor{}, false},
		{"ab.", store.Cursor{}, false},
		{"Ab.5", store.Cursor{}, false},
		{"a_b.5", store.Cursor{}, false},
		{"ab.5.5", store.Cursor{}, false},
		{"ab..5", store.Cursor{}, false},
		{"ab.-5", store.Cursor{}, false},
		{"ab.+5", store.Cursor{}, false},
		{"-5", store.Cursor{}, false},
		{" 5", store.Cursor{}, false},
		{"5 ", store.Cursor{}, false},
		{"ab.0x5", store.Cursor{}, false},
	} {
		got, err := store.ParseCursor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if back, err := store.ParseCursor(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %q -> %+v, %v", tc.in, got.String(), back, err)
			}
		}
	}
	if s := (store.Cursor{Epoch: "k3x", Seq: 42}).String(); s != "k3x.42" {
		t.Errorf("String = %q, want k3x.42", s)
	}
	if s := (store.Cursor{Seq: 42}).String(); s != "42" {
		t.Errorf("bare String = %q, want 42", s)
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"0", "ab.5", "abcdefghijklmnopq.1", ".5", "ab.", "1.5.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := store.ParseCursor(s)
		if err != nil {
			return
		}
		if c.Seq < 0 || (c.Epoch != "" && !store.ValidEpoch(c.Epoch)) {
			t.Fatalf("ParseCursor(%q) = %+v", s, c)
		}
		if back, err := store.ParseCursor(c.String()); err != nil || back != c {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, c.String(), back, err)
		}
	})
}
