// Package procstat reads what the load test and perf measure of other
// processes from /proc: CPU time, parent, children, resident memory, and
// a PostgreSQL cluster's postmaster.
package procstat

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// statFields are the fields of /proc/<pid>/stat after the command name,
// which may hold spaces (nil when unreadable).
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func ticks(f []string, a, b int) time.Duration {
	x, _ := strconv.ParseInt(f[a], 10, 64)
	y, _ := strconv.ParseInt(f[b], 10, 64)
	return time.Duration(x+y) * time.Second / clockTicks
}

// CPU is pid's user + system time (utime and stime, fields 14 and 15);
// false when the process is gone or unreadable.
func CPU(pid int) (time.Duration, bool) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, false
	}
	return ticks(f, 11, 12), true
}

// ChildrenCPU is what pid's exited and reaped children used (cutime and
// cstime, fields 16 and 17).
func ChildrenCPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	return ticks(f, 13, 14)
}

// Parent is pid's parent (field 4), 0 when unreadable.
func Parent(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// Children are the live processes whose parent is pid.
func Children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err == nil && child != pid && Parent(child) == pid {
			out = append(out, child)
		}
	}
	return out
}

// RSS is pid's resident memory in bytes (VmRSS), 0 when unreadable.
func RSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// Postmaster is the pid of the PostgreSQL cluster whose data directory is
// dir (the first line of its postmaster.pid); false when it has none.
func Postmaster(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid, err == nil
}
