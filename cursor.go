package herald

import (
	"errors"
	"strconv"
	"strings"
)

// Cursor is a position in the event log as clients see it: the epoch
// (which history) and the seq within it. Seqs are dense and ordered only
// inside one epoch; a new epoch starts whenever history may have forked
// (the database restored, a timeline change, the sequencer's state going
// backwards), so a cursor from another epoch must never be compared by seq.
//
// On the wire it is "<epoch>.<seq>". An empty Epoch is a bare decimal
// cursor from an older client: the server takes it as the current epoch.
// Cursor does no I/O.
type Cursor struct {
	Epoch string
	Seq   int64
}

// MaxEpochLen bounds an epoch: 1-16 characters of [a-z0-9].
const MaxEpochLen = 16

// ErrBadCursor is returned by ParseCursor; the message says what is wrong.
var ErrBadCursor = errors.New(`a cursor is "<epoch>.<seq>" (epoch: 1-16 of a-z 0-9; seq: a non-negative decimal), or a bare decimal seq`)

// ParseCursor reads "<epoch>.<seq>" or a bare "<seq>", matching
// ^([a-z0-9]{1,16}\.)?[0-9]+$ with seq fitting an int64.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	num := s
	if i := strings.IndexByte(s, '.'); i >= 0 {
		c.Epoch, num = s[:i], s[i+1:]
		if !ValidEpoch(c.Epoch) {
			return Cursor{}, ErrBadCursor
		}
	}
	// No length cap before ParseInt: leading zeros keep a long seq within
	// the grammar ("000…0" is 0), and the header limit bounds the input.
	if num == "" {
		return Cursor{}, ErrBadCursor
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return Cursor{}, ErrBadCursor
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	c.Seq = n
	return c, nil
}

// ValidEpoch reports whether e is 1-16 characters of [a-z0-9].
func ValidEpoch(e string) bool {
	if len(e) == 0 || len(e) > MaxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		if (e[i] < 'a' || e[i] > 'z') && (e[i] < '0' || e[i] > '9') {
			return false
		}
	}
	return true
}

// String is the wire form: "<epoch>.<seq>", or the bare seq when Epoch is
// empty.
func (c Cursor) String() string { return string(c.Append(nil)) }

// Append appends the wire form to b.
func (c Cursor) Append(b []byte) []byte {
	if c.Epoch != "" {
		b = append(b, c.Epoch...)
		b = append(b, '.')
	}
	return strconv.AppendInt(b, c.Seq, 10)
}
