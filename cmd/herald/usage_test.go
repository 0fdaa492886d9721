package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/migrations"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestUsageErrors: every command-line mistake is an error with exit status
// 2 and a message that names what is wrong, found before any database is
// opened or started.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDir(t), "never-created")
	big := `{"x":"` + strings.Repeat("y", 9000) + `"}`
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		// The load generator is cmd/herald-bench, not part of the server.
		{"bench", []string{"bench", "fanout"}, nil, `unknown command "bench"`},
		{"bad flag", []string{"serve", "--nope"}, nil, "flag provided but not defined: -nope"},
		{"bad flag, default command", []string{"--nope"}, nil, "flag provided but not defined: -nope"},
		{"bad flag value", []string{"serve", "--heartbeat", "often"}, nil, `invalid value "often" for flag -heartbeat`},
		{"serve argument", []string{"serve", "extra"}, nil, "serve takes no arguments"},
		{"HERALD_HEARTBEAT=abc", []string{"serve"}, []string{"HERALD_HEARTBEAT", "abc"}, `HERALD_HEARTBEAT="abc": want a duration`},
		{"negative HERALD_HEARTBEAT", []string{"serve"}, []string{"HERALD_HEARTBEAT", "-1s"}, `HERALD_HEARTBEAT="-1s"`},
		{"HERALD_MAX_CHANNELS=lots", []string{"serve"}, []string{"HERALD_MAX_CHANNELS", "lots"}, `HERALD_MAX_CHANNELS="lots": want a whole number`},
		{"HERALD_NO_MIGRATE=perhaps", []string{"serve"}, []string{"HERALD_NO_MIGRATE", "perhaps"}, `HERALD_NO_MIGRATE="perhaps": want true or false`},
		{"HERALD_LOG_LEVEL=loud", []string{"serve"}, []string{"HERALD_LOG_LEVEL", "loud"}, `"loud" (--log-level or HERALD_LOG_LEVEL): want debug, info, warn or error`},
		{"--log-level loud", []string{"publish", "--log-level", "loud", "a", "{}"}, nil, `--log-level`},
		{"migrate without command", []string{"migrate"}, nil, "migrate needs a command: up, down, version or force N"},
		{"migrate sideways", []string{"migrate", "sideways"}, nil, "want up, down, version or force N"},
		{"migrate up 2", []string{"migrate", "up", "2"}, nil, "want up, down, version or force N"},
		{"migrate force", []string{"migrate", "force"}, nil, "want up, down, version or force N"},
		{"migrate force x", []string{"migrate", "force", "x"}, nil, `migrate force: "x" is not a version`},
		{"migrate bad flag", []string{"migrate", "--nope", "up"}, nil, "flag provided but not defined: -nope"},
		{"publish without arguments", []string{"publish"}, nil, "publish needs CHANNEL [TYPE] JSON"},
		{"publish too many arguments", []string{"publish", "a", "b", "{}", "d"}, nil, "publish needs CHANNEL [TYPE] JSON"},
		{"publish bad channel", []string{"publish", "no spaces", "{}"}, nil, `"no spaces" has an illegal character at position 3`},
		{"publish empty channel", []string{"publish", "", "{}"}, nil, "channel name is empty"},
		{"publish long channel", []string{"publish", strings.Repeat("c", 165), "{}"}, nil, "the limit is 164"},
		{"publish bad type", []string{"publish", "a", "bad type", "{}"}, nil, `type "bad type" has an illegal character`},
		{"publish data not JSON", []string{"publish", "a", "{nope"}, nil, "data must be a JSON object"},
		{"publish data an array", []string{"publish", "a", "[1,2]"}, nil, "data must be a JSON object"},
		{"publish data too large", []string{"publish", "a", big}, nil, "data is larger than 8192 bytes"},
		{"tail without channels", []string{"tail"}, nil, "tail needs at least one channel"},
		{"tail --from -1", []string{"tail", "--from", "-1", "a"}, nil, `--from "-1": want a cursor`},
		{"tail --from x", []string{"tail", "--from", "x", "a"}, nil, `--from "x": want a cursor`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, c.args, env(append([]string{"HERALD_DATA_DIR", dataDir}, c.env...)...), &stdout, &stderr)
			if err == nil {
				t.Fatalf("run %q: nil error, want a usage error", c.args)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d for %v, want 2", code, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("wrote %q to stdout on a usage error", stdout.String())
			}
		})
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a usage error created the data dir %s (%v)", dataDir, err)
	}
}

// TestHelp: `herald help`, `-h` and `--help` print the command list to
// stdout and succeed; a command's -h prints its flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, _, err := runOnce(t, args, env())
		if err != nil || !strings.Contains(out, "herald migrate up|down|version|force N") {
			t.Errorf("herald %s: %v, printed %q", args[0], err, out)
		}
	}
	_, errOut, err := runOnce(t, []string{"serve", "-h"}, env())
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 2 || !strings.Contains(errOut, "-listen") || !strings.Contains(errOut, "[HERALD_LISTEN]") {
		t.Errorf("serve -h: %v (exit %d), printed %q", err, exitCode(err), errOut)
	}
}

// TestNoDatabase: publish with neither DATABASE_URL nor a running embedded
// server says what to do (exit 1, not a usage error) and starts nothing.
func TestNoDatabase(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDir(t), "none")
	_, _, err := runOnce(t, []string{"publish", "builds", "{}"}, env("HERALD_DATA_DIR", dataDir))
	if err == nil || !strings.Contains(err.Error(), "set DATABASE_URL") || !strings.Contains(err.Error(), dataDir) {
		t.Errorf("publish without a database: %v", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("publish created the data dir (%v)", err)
	}
	// An unreachable server is an error too, and quick.
	_, _, err = runOnce(t, []string{"publish", "builds", "{}"}, env("DATABASE_URL", "postgres://herald@127.0.0.1:1/herald?connect_timeout=5"))
	if err == nil || exitCode(err) != 1 {
		t.Errorf("publish to an unreachable database: %v (exit %d)", err, exitCode(err))
	}
}

// TestMigrate: migrate version, down and up against a real database print
// the resulting version.
func TestMigrate(t *testing.T) {
	t.Parallel()
	getenv := env("DATABASE_URL", pgtest.URL(t), "HERALD_DATA_DIR", filepath.Join(tempDir(t), "unused"))
	latest := fmt.Sprintf("schema version %d\n", migrations.Latest)
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "version"}, latest},
		{[]string{"migrate", "up"}, latest}, // nothing to do is not an error
		{[]string{"migrate", "down"}, "schema version 0\n"},
		{[]string{"migrate", "version"}, "schema version 0\n"},
		{[]string{"migrate", "up"}, latest},
		{[]string{"migrate", "--log-level", "error", "version"}, latest},
	} {
		out, errOut, err := runOnce(t, step.args, getenv)
		if err != nil || out != step.want {
			t.Fatalf("herald %s: %v, printed %q, want %q; stderr %s", strings.Join(step.args, " "), err, out, step.want, errOut)
		}
	}
}
