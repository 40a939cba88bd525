package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// groupCPU is the CPU time of a group of processes that is not one pid:
// the load generator itself (with the embedded NATS server when it runs
// one), and a PostgreSQL cluster (the postmaster, its live children, and
// what its exited children used).
type groupCPU struct {
	name  string
	read  func() time.Duration
	start time.Duration
}

func newGroupCPU(name string, read func() time.Duration) *groupCPU {
	return &groupCPU{name: name, read: read, start: read()}
}

func (g *groupCPU) used() time.Duration { return max(0, g.read()-g.start) }

// selfCPU is this process's CPU time.
func selfCPU() time.Duration { return readCPU(os.Getpid()) }

// postgresCPU returns a reader of the CPU time of the cluster whose data
// directory is dir (its postmaster.pid names the postmaster), or nil.
func postgresCPU(dir string) func() time.Duration {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return nil
	}
	return func() time.Duration {
		total := readCPU(pid) + readChildrenCPU(pid)
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			child, err := strconv.Atoi(e.Name())
			if err != nil || child == pid {
				continue
			}
			if parentOf(child) == pid {
				total += readCPU(child)
			}
		}
		return total
	}
}

// statFields are the fields of /proc/<pid>/stat after the command name.
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

// parentOf is pid's parent (field 4), 0 when unreadable.
func parentOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// readChildrenCPU is cutime + cstime (fields 16 and 17): what pid's
// exited and reaped children used.
func readChildrenCPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * time.Second / clockTicks
}
