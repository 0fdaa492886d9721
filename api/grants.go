package api

import (
	"fmt"
	"strings"

	"github.com/herald-dev/herald"
)

// MatchGrant reports whether pattern, from a token's channels claim or an
// API key's scope, covers channel. A pattern is an exact channel name, "*"
// (every channel), or a prefix ending in a separator (any channel byte
// that is not a letter or digit, e.g. "-") followed by "*":
// "private-build-1-*" covers "private-build-1-linux" but not
// "private-build-10". Matching is by whole segments so that a grant for
// build 1 can never spill over to build 10; a "*" that does not follow a
// separator ("private-build-1*") covers nothing.
func MatchGrant(pattern, channel string) bool {
	if pattern == channel || pattern == "*" {
		return true
	}
	prefix, ok := grantPrefix(pattern)
	return ok && len(channel) > len(prefix) && strings.HasPrefix(channel, prefix)
}

// grantPrefix is the prefix of a wildcard pattern, ok only for a pattern
// whose "*" follows a separator.
func grantPrefix(pattern string) (string, bool) {
	prefix, ok := strings.CutSuffix(pattern, "*")
	if !ok || prefix == "" {
		return "", false
	}
	c := prefix[len(prefix)-1]
	alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	return prefix, !alnum
}

// ValidateGrant reports whether pattern is a channel name, "*", or a
// segment wildcard such as "private-build-*"; tools that mint grants call
// it so a pattern that would cover nothing is refused up front.
func ValidateGrant(pattern string) error {
	if pattern == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		if _, seg := grantPrefix(pattern); !seg {
			return fmt.Errorf("grant %q: a * must follow a separator such as - (e.g. %q); grants match whole segments", pattern, prefix+"-*")
		}
		if err := herald.ValidateChannel(prefix); err != nil {
			return fmt.Errorf("grant %q: %w", pattern, err)
		}
		return nil
	}
	if err := herald.ValidateChannel(pattern); err != nil {
		return fmt.Errorf("grant %q: %w", pattern, err)
	}
	return nil
}
