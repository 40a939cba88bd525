package main

import (
	"os"
	"time"

	"github.com/promoengine/promoengine/loadtest/procstat"
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

// cpuOf is pid's CPU time, 0 when it is gone.
func cpuOf(pid int) time.Duration {
	d, _ := procstat.CPU(pid)
	return d
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration { return cpuOf(os.Getpid()) }

// postgresCPU returns a reader of the CPU time of the cluster whose data
// directory is dir, or nil when it has no postmaster.
func postgresCPU(dir string) func() time.Duration {
	pid, ok := procstat.Postmaster(dir)
	if !ok {
		return nil
	}
	return func() time.Duration {
		total := cpuOf(pid) + procstat.ChildrenCPU(pid)
		for _, child := range procstat.Children(pid) {
			total += cpuOf(child)
		}
		return total
	}
}
