// Package embedpg runs a private PostgreSQL server from the local
// installation: herald's zero-configuration database (`herald serve` with no
// DATABASE_URL) and the tests' throwaway clusters. It manages the process
// only, through PostgreSQL's own programs (initdb, postgres, psql), so it
// needs no database driver.
package embedpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPostgres means no local PostgreSQL installation was found.
var ErrNoPostgres = errors.New("no PostgreSQL installation found (looked for initdb and postgres on PATH and in /usr/lib/postgresql/*/bin). " +
	"Install one (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
	"or point herald at a server with DATABASE_URL=postgres://user@host/db")

// Options configures a private PostgreSQL cluster.
type Options struct {
	// DataDir holds the cluster (created with initdb if empty) and its
	// Unix socket.
	DataDir string
	// Durable keeps fsync on. Test clusters turn it off for speed.
	Durable bool
	// Settings are extra postgres -c settings.
	Settings map[string]string
	Log      *slog.Logger
}

// Cluster is a private PostgreSQL server started from the local
// installation, listening only on a Unix socket in its data directory. It
// is herald's zero-configuration default and the tests' throwaway database.
type Cluster struct {
	dir  string
	bin  string // the directory holding initdb, postgres and psql
	cmd  *exec.Cmd
	exit chan error
	done chan struct{} // closed when postgres has exited
	log  *slog.Logger
}

// Find returns the directory holding initdb and postgres.
func Find() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dir = filepath.Dir(real)
		}
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start initialises DataDir if needed and starts postgres on it. Stop it
// with Stop; if this process dies, postgres is told to stop too.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	if cred != nil {
		if err := reachable(filepath.Dir(dir), cred.Uid); err != nil {
			return nil, err
		}
		// postgres refuses to run as root; as root we run it as the
		// postgres OS user, who must own the directory and reach it.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown data dir: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("chmod data dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		log.Info("initialising embedded PostgreSQL cluster", "dir", dir)
		args := []string{"-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}
		if !opts.Durable {
			args = append(args, "--no-sync")
		}
		init := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		init.Dir = dir
		if out, err := init.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", dir, err, out)
		}
	}
	settings := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": dir,
		"port":                    "5432",
		"max_connections":         "200",
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", dir}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open postgres log: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: if herald (or a test binary) is killed, postgres gets
	// SIGINT (fast shutdown) instead of living on as an orphan.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, cmd: cmd, exit: make(chan error, 1), done: make(chan struct{}), log: log}
	go func() { c.exit <- cmd.Wait(); logFile.Close(); close(c.done) }()
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		tail, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return nil, fmt.Errorf("embedded postgres in %s did not start: %w\n%s", dir, err, bytes.TrimSpace(tail))
	}
	log.Info("embedded PostgreSQL ready", "dir", dir)
	return c, nil
}

// runAs returns the postgres OS user's credentials when running as root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the embedded cluster must run as the postgres user, which does not exist: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// waitReady waits until the postmaster reports itself ready in
// postmaster.pid, as pg_ctl start -w does: from PostgreSQL 10 its eighth
// line is the server's state, "ready" once it accepts connections. The
// first line must be our postmaster's pid, so a stale file left by a
// killed server is not mistaken for this one.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		state := c.state()
		if state == "ready" && Running(c.dir) {
			return nil
		}
		select {
		case err := <-c.exit:
			c.exit <- err
			return fmt.Errorf("postgres exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after 60s (state %q)", state)
		}
	}
}

// state is the server state our postmaster wrote in postmaster.pid
// ("starting", "ready", ...), or "" if the file is not (yet) ours.
func (c *Cluster) state() string {
	b, err := os.ReadFile(filepath.Join(c.dir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(c.Pid()) {
		return ""
	}
	return strings.TrimSpace(lines[7])
}

// URL is a connection URL for database db on the cluster's socket.
func (c *Cluster) URL(db string) string { return SocketURL(c.dir, db) }

// SocketURL is the connection URL for database db of an embedded cluster
// whose data directory (and so socket) is dir; other herald commands use it
// to reach a running `herald serve`.
func SocketURL(dir, db string) string {
	q := url.Values{"host": {dir}, "port": {"5432"}, "user": {"postgres"}}
	return "postgres:///" + url.PathEscape(db) + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// Running reports whether an embedded cluster is serving in dir.
func Running(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".s.PGSQL.5432"))
	return err == nil
}

// reachable checks that uid can traverse every directory down to dir: as
// root, the cluster runs as the postgres user, and a data directory under
// /root would otherwise fail deep inside initdb with a baffling message.
func reachable(dir string, uid uint32) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if ok && !(st.Uid == uid && fi.Mode()&0o100 != 0) && fi.Mode()&0o001 == 0 {
				return fmt.Errorf("running as root, the embedded PostgreSQL runs as the postgres user, who cannot enter %s; "+
					"choose a data directory it can reach (for example --data-dir /var/lib/herald) or set DATABASE_URL", d)
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

// Exited is closed when the postmaster has exited, for whatever reason.
func (c *Cluster) Exited() <-chan struct{} { return c.done }

// Dir is the data directory.
func (c *Cluster) Dir() string { return c.dir }

// Pid is the postmaster's process id.
func (c *Cluster) Pid() int { return c.cmd.Process.Pid }

// Stop shuts postgres down (fast mode: sessions are ended, data is safe)
// and waits up to 30 s, then kills it.
func (c *Cluster) Stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-c.exit:
		c.exit <- err
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("embedded postgres did not stop within 30s; killed")
	}
}

// createIfMissing is psql input: it creates the database named by the
// variable name unless it exists (\gexec runs the query's result).
const createIfMissing = `SELECT format('CREATE DATABASE %I', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
`

// CreateDatabase creates database name on the cluster if it does not exist.
// It runs the installation's psql, which quotes name for us.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "psql"),
		"-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "name="+name, "-d", c.URL("postgres"))
	cmd.Stdin = strings.NewReader(createIfMissing)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("create database %q: %w\n%s", name, err, bytes.TrimSpace(out))
	}
	return nil
}
