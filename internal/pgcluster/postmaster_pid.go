package pgcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// postmasterPID is what the server writes to postmaster.pid: its pid, then
// data directory, start time, port, socket directory, listen address,
// shared memory key and status, one per line. Only what Start needs is kept.
type postmasterPID struct {
	pid    int
	port   int
	status string // "starting", "ready", "stopping" or "" before it is written.
}

// readPostmasterPID reads postmaster.pid of dir; ok is false when there is
// none, i.e. no server was started or it stopped cleanly.
func readPostmasterPID(dir string) (postmasterPID, bool, error) {
	f, err := os.Open(filepath.Join(dir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return postmasterPID{}, false, nil
	}
	if err != nil {
		return postmasterPID{}, false, fmt.Errorf("pgcluster: %w", err)
	}
	defer f.Close()

	var lines []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		lines = append(lines, strings.TrimSpace(scanner.Text()))
	}
	if err := scanner.Err(); err != nil {
		return postmasterPID{}, false, fmt.Errorf("pgcluster: read postmaster.pid: %w", err)
	}
	var pm postmasterPID
	if len(lines) > 0 {
		// A negative pid marks a standalone backend; it holds the lock all the same.
		pid, err := strconv.Atoi(lines[0])
		if err != nil {
			// Half-written by a server killed while starting: treat as stale.
			return postmasterPID{}, true, nil
		}
		pm.pid = max(pid, -pid)
	}
	if len(lines) > 3 {
		pm.port, _ = strconv.Atoi(lines[3])
	}
	if len(lines) > 7 {
		pm.status = lines[7]
	}
	return pm, true, nil
}

// isLivePostgres tells whether pid is a running postgres process. A pid that
// is alive but belongs to another program was reused after the server died.
func isLivePostgres(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		// Without procfs (not Linux) trust kill: the pid is alive. With it,
		// the process exited since kill.
		_, noProc := os.Stat("/proc/self")
		return noProc != nil
	}
	// "pid (comm) state ...". A zombie is dead: a killed server whose parent
	// (often a container's pid 1) does not reap it still answers kill.
	open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || closing < open || len(stat) < closing+3 {
		return false
	}
	comm, state := string(stat[open+1:closing]), stat[closing+2]
	return comm == "postgres" && state != 'Z' && state != 'X'
}
