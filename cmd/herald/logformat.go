package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log formats (--log-format, HERALD_LOG_FORMAT): text for a terminal, json
// for log shippers, where every line herald prints must be one JSON object.
const (
	logText = "text"
	logJSON = "json"
)

func checkLogFormat(format string) error {
	if format != logText && format != logJSON {
		return &usageError{fmt.Sprintf("log format %q (--log-format or HERALD_LOG_FORMAT): want text or json", format)}
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{fmt.Sprintf("log level %q (--log-level or HERALD_LOG_LEVEL): want debug, info, warn or error", level)}
	}
	if err := checkLogFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// jsonLines wraps each line written to it that is not already a JSON
// object as a JSON log record (msg: the line), so in json mode the plain
// lines herald prints for people ("herald listening on ...", usage, the
// final error) are as parseable as its log records, which pass through.
type jsonLines struct {
	mu      sync.Mutex
	w       io.Writer
	log     *slog.Logger
	partial []byte
}

func newJSONLines(w io.Writer) *jsonLines {
	return &jsonLines{w: w, log: slog.New(slog.NewJSONHandler(w, nil))}
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		j.emit(j.partial[:i])
		j.partial = j.partial[i+1:]
	}
}

func (j *jsonLines) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	switch {
	case len(bytes.TrimSpace(line)) == 0:
	case line[0] == '{' && json.Valid(line):
		_, _ = j.w.Write(append(line, '\n'))
	default:
		r := slog.NewRecord(time.Now(), slog.LevelInfo, string(line), 0)
		_ = j.log.Handler().Handle(context.Background(), r)
	}
}

// jsonLogRequested reports whether the command line or environment asks
// for JSON logs, for the error main prints after run returns (the flags
// are parsed inside the command).
func jsonLogRequested(args []string, getenv func(string) string) bool {
	format := getenv("HERALD_LOG_FORMAT")
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "log-format" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		format = value
	}
	return format == logJSON
}

// printError is how main reports run's error: "herald: ..." on a
// terminal, one JSON record at level ERROR in json mode.
func printError(w io.Writer, err error, jsonMode bool) {
	if jsonMode {
		slog.New(slog.NewJSONHandler(w, nil)).Error("herald: "+err.Error(), "err", err.Error())
		return
	}
	fmt.Fprintln(w, "herald:", err)
}
