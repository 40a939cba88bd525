// Package testbin builds the real promoengine binary once per test binary
// and runs it as a subprocess, so end-to-end tests exercise exactly what
// operators run — flags, environment parsing, signal handling, exit codes —
// and can kill it with SIGKILL where a crash is the point of the test.
package testbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testlog"
)

var build = sync.OnceValues(func() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "promoengine-testbin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "promoengine")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/promoengine")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/promoengine: %v\n%s", err, out)
	}
	return bin, nil
})

// Path returns the path of the built binary, building it on first use.
func Path(t testing.TB) string {
	t.Helper()
	bin, err := build()
	require.NoError(t, err)
	return bin
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testbin: cannot locate source")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testbin: go.mod not found")
		}
		dir = parent
	}
}

// Env is the environment of a subprocess: only these variables plus PATH
// and HOME, so the developer's own PROMO_* never leak into a test.
type Env map[string]string

func (e Env) list() []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PROMO_LOG_FORMAT=json"}
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// Result is the outcome of a command that ran to completion.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs the binary to completion with a timeout of two minutes.
func Run(t testing.TB, env Env, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Path(t), args...)
	cmd.Env = env.list()
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		require.NoError(t, err, "run promoengine %v", args)
	}
	return res
}

// Proc is a long-running engine process.
type Proc struct {
	t        testing.TB
	cmd      *exec.Cmd
	log      *testlog.Buffer
	done     chan struct{}
	HTTPAddr string
}

// Start starts `promoengine args…` with PROMO_HTTP_ADDR on a free port and
// waits until its /readyz answers 200. It is killed at cleanup if still
// running; its log is printed when the test failed.
func Start(t testing.TB, env Env, args ...string) *Proc {
	t.Helper()
	addr := freeAddr(t)
	full := Env{}
	for k, v := range env {
		full[k] = v
	}
	full["PROMO_HTTP_ADDR"] = addr
	cmd := exec.Command(Path(t), args...)
	cmd.Env = full.list()
	cmd.Dir = t.TempDir()
	log := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	p := &Proc{t: t, cmd: cmd, log: log, done: make(chan struct{}), HTTPAddr: addr}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("promoengine %v log:\n%s", args, p.Log())
		}
	})
	p.WaitReady()
	return p
}

// WaitReady waits for /readyz to answer 200.
func (p *Proc) WaitReady() {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("promoengine exited before it was ready:\n%s", p.Log())
		default:
		}
		resp, err := http.Get("http://" + p.HTTPAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("promoengine not ready after 60s:\n%s", p.Log())
}

// Kill sends SIGKILL (a crash: nothing is flushed, nothing acknowledged).
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit.
func (p *Proc) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.Kill()
		return errors.New("promoengine did not stop within 60s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("promoengine exited with status %d", code)
	}
	return nil
}

// Pid is the process id, for tests that read /proc/<pid> (CPU time, RSS).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns everything the process wrote so far.
func (p *Proc) Log() string { return p.log.String() }

// LogContains reports whether the log contains s.
func (p *Proc) LogContains(s string) bool { return strings.Contains(p.Log(), s) }

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
