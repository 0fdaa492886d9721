package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Figures read from /proc for the server under test and its Postgres.
// The CPU time a server spends per 1,000 deliveries is the figure to
// compare: unlike latency it barely moves when other work shares the
// machine.

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture herald runs on (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// procStat is the part of /proc/PID/stat the bench uses.
type procStat struct {
	ppid           int
	cpu            time.Duration // utime + stime, all threads (cpuOf prefers the CPU clock)
	reapedChildren time.Duration // cutime + cstime: children waited for
	comm           string
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// processCPU is pid's CPU time in nanoseconds, all threads, living and
// exited, from its CPU-time clock (clock_getcpuclockid). /proc/PID/stat
// counts in clock ticks (10 ms): over a 10 s quiet window each process's
// figure was off by up to 1 ms/s, and the quiet rows came out in whole
// ms/s with ranges wider than the figures.
func processCPU(pid int) (time.Duration, bool) {
	// The kernel's encoding of a process CPU clock: the pid inverted,
	// shifted past the clock type bits, CPUCLOCK_SCHED (2), process-wide.
	clock := int32(^pid<<3 | 2)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// parseStat reads "pid (comm) state ppid ... utime stime cutime cstime ...";
// comm may hold spaces and parentheses, so fields count from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): field k is f[k-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short stat %q", b)
	}
	fmtNum := func(k int) int64 { n, _ := strconv.ParseInt(f[k-3], 10, 64); return n }
	return procStat{
		ppid:           int(fmtNum(4)),
		cpu:            time.Duration(fmtNum(14)+fmtNum(15)) * clockTick,
		reapedChildren: time.Duration(fmtNum(16)+fmtNum(17)) * clockTick,
		comm:           string(b[open+1 : end]),
	}, nil
}

// cpuMeter measures the CPU time of a set of processes: fixed pids (the
// server), or a root and all its children (Postgres: the postmaster and its
// backends, which come and go).
type cpuMeter struct {
	pids     []int
	root     int  // with children: the parent whose children count too
	children bool // count root's children, living and reaped
}

// cpuSample is CPU time per pid at one instant, plus the root's reaped
// children's total.
type cpuSample struct {
	per    map[int]time.Duration
	reaped time.Duration
}

func (m *cpuMeter) sample() cpuSample {
	s := cpuSample{per: map[int]time.Duration{}}
	if m == nil {
		return s
	}
	for _, pid := range m.pids {
		if t, ok := cpuOf(pid); ok {
			s.per[pid] = t
		}
	}
	if m.children {
		if st, err := readStat(m.root); err == nil {
			s.reaped = st.reapedChildren
		}
		for _, pid := range append(childrenOf(m.root), m.root) {
			if t, ok := cpuOf(pid); ok {
				s.per[pid] = t
			}
		}
	}
	return s
}

// cpuOf is pid's CPU time: its CPU-time clock, else /proc/PID/stat's.
func cpuOf(pid int) (time.Duration, bool) {
	if t, ok := processCPU(pid); ok {
		return t, true
	}
	st, err := readStat(pid)
	return st.cpu, err == nil
}

// since is the CPU time used between b and a. A child that exited in
// between shows up in the root's reaped total, less what it had used
// before b.
func (a cpuSample) since(b cpuSample) time.Duration {
	d := a.reaped - b.reaped
	for pid, t := range a.per {
		d += t - b.per[pid]
	}
	for pid, t := range b.per {
		if _, alive := a.per[pid]; !alive {
			d -= t
		}
	}
	return max(d, 0)
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	for _, p := range allPIDs() {
		if st, err := readStat(p); err == nil && st.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// procMemory is a process group's resident (VmRSS) and proportional (Pss) set
// sizes, in KiB; Pss splits shared pages between their sharers, so nginx's
// workers and shared memory are not counted twice.
type procMemory struct{ RSS, Pss int64 }

func readMemory(pids []int) (procMemory, error) {
	var m procMemory
	for _, pid := range pids {
		rss, err := kibField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		if err != nil {
			return m, err
		}
		pss, err := kibField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		if err != nil {
			return m, err
		}
		m.RSS += rss
		m.Pss += pss
	}
	return m, nil
}

func kibField(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, key) {
			v := strings.Fields(line[len(key):])
			if len(v) == 0 {
				break
			}
			return strconv.ParseInt(v[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// listenerPIDs finds every process holding the socket that listens on
// port: herald's one process, or nginx's master and workers.
func listenerPIDs(port int) ([]int, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEXIP:HEXPORT; state 0A is LISTEN.
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if p, err := strconv.ParseInt(f[1][i+1:], 16, 32); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return nil, fmt.Errorf("nothing listens on port %d", port)
	}
	var out []int
	for _, pid := range allPIDs() {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && inodes[l] {
				out = append(out, pid)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no process found holding the listener on port %d (run as its user or root, or pass --server-pid)", port)
	}
	return out, nil
}

// selfCPU is this process's CPU time: the load generator's own cost.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNoFile lifts the open-files soft limit to the hard limit and checks
// that need descriptors fit.
func raiseNoFile(need int) error {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", r.Max, err)
		}
	}
	if uint64(need) > r.Cur {
		return &usageError{fmt.Sprintf("%d connections need more open files than the limit %d allows (ulimit -Hn)", need, r.Cur)}
	}
	return nil
}

// parsePIDs reads "123,456".
func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, &usageError{fmt.Sprintf("pid %q: want a process id", f)}
		}
		out = append(out, n)
	}
	return out, nil
}
