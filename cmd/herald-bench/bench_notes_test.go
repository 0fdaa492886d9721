package main

import (
	"os"
	"regexp"
	"testing"
)

// TestBenchNotesHaveNoFigures: bench/NOTES.md is hand-written and
// appended unchanged to every regenerated BENCHMARKS.md, so a figure in it
// would go stale at the next run. Outside `code spans` (identifiers such
// as write(2)) it must hold no digits: the figures are the generated
// tables'.
func TestBenchNotesHaveNoFigures(t *testing.T) {
	b, err := os.ReadFile("../../bench/NOTES.md")
	if err != nil {
		t.Fatal(err)
	}
	prose := regexp.MustCompile("`[^`]*`").ReplaceAll(b, nil)
	if m := regexp.MustCompile(`[^\n]*[0-9][^\n]*`).FindAll(prose, 5); len(m) > 0 {
		for _, line := range m {
			t.Errorf("bench/NOTES.md has a figure outside code: %s", line)
		}
	}
}
