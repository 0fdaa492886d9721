package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// envFlags binds flags whose defaults come from the environment, so every
// setting has one name on the command line and one in the environment,
// and a bad value in either is reported with the name the user typed.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func (e *envFlags) String(p *string, name, env, def, help string) {
	e.fs.StringVar(p, name, envDefault(e.getenv, env, def), fmt.Sprintf("%s [%s]", help, env))
}

// fromEnv is env's value parsed, or def when unset; a bad value is kept
// as a usage error naming the variable, reported by parse.
func fromEnv[T any](e *envFlags, env string, def T, parse func(string) (T, bool), want string) T {
	s := e.getenv(env)
	if s == "" {
		return def
	}
	v, ok := parse(s)
	if !ok {
		e.errs = append(e.errs, &usageError{fmt.Sprintf("%s=%q: want %s", env, s, want)})
		return def
	}
	return v
}

func (e *envFlags) Duration(p *time.Duration, name, env string, def time.Duration, help string) {
	v := fromEnv(e, env, def, func(s string) (time.Duration, bool) {
		d, err := time.ParseDuration(s)
		return d, err == nil && d >= 0
	}, "a duration such as 15s")
	e.fs.DurationVar(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Int(p *int, name, env string, def int, help string) {
	v := fromEnv(e, env, def, func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0
	}, "a whole number")
	e.fs.IntVar(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Int64(p *int64, name, env string, def int64, help string) {
	v := fromEnv(e, env, def, func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0
	}, "a whole number")
	e.fs.Int64Var(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Bool(p *bool, name, env string, help string) {
	v := fromEnv(e, env, false, func(s string) (bool, bool) {
		b, err := strconv.ParseBool(s)
		return b, err == nil
	}, "true or false")
	e.fs.BoolVar(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

// parse parses args; environment errors come first.
func (e *envFlags) parse(args []string) error {
	if len(e.errs) > 0 {
		return e.errs[0]
	}
	return parseFlags(e.fs, args)
}

// commonFlags are shared by every command that reaches the database.
type commonFlags struct {
	databaseURL string
	dataDir     string
	logLevel    string
	logFormat   string
}

func (c *commonFlags) bind(e *envFlags) {
	e.String(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL; unset runs an embedded PostgreSQL in --data-dir")
	e.String(&c.dataDir, "data-dir", "HERALD_DATA_DIR", ".herald", "embedded PostgreSQL's data directory")
	e.String(&c.logLevel, "log-level", "HERALD_LOG_LEVEL", "info", "debug, info, warn or error")
	e.String(&c.logFormat, "log-format", "HERALD_LOG_FORMAT", logText, "text, or json: every line printed is a JSON object")
}
