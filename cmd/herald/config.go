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

func (e *envFlags) Duration(p *time.Duration, name, env string, def time.Duration, help string) {
	v := def
	if s := e.getenv(env); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			e.errs = append(e.errs, &usageError{fmt.Sprintf("%s=%q: want a duration such as 15s", env, s)})
		} else {
			v = d
		}
	}
	e.fs.DurationVar(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Int(p *int, name, env string, def int, help string) {
	v := def
	if s := e.getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			e.errs = append(e.errs, &usageError{fmt.Sprintf("%s=%q: want a whole number", env, s)})
		} else {
			v = n
		}
	}
	e.fs.IntVar(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Int64(p *int64, name, env string, def int64, help string) {
	v := def
	if s := e.getenv(env); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			e.errs = append(e.errs, &usageError{fmt.Sprintf("%s=%q: want a whole number", env, s)})
		} else {
			v = n
		}
	}
	e.fs.Int64Var(p, name, v, fmt.Sprintf("%s [%s]", help, env))
}

func (e *envFlags) Bool(p *bool, name, env string, help string) {
	v := false
	if s := e.getenv(env); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			e.errs = append(e.errs, &usageError{fmt.Sprintf("%s=%q: want true or false", env, s)})
		}
		v = b
	}
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
}

func (c *commonFlags) bind(e *envFlags) {
	e.String(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL; unset runs an embedded PostgreSQL in --data-dir")
	e.String(&c.dataDir, "data-dir", "HERALD_DATA_DIR", ".herald", "embedded PostgreSQL's data directory")
	e.String(&c.logLevel, "log-level", "HERALD_LOG_LEVEL", "info", "debug, info, warn or error")
}
