package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testlog"
)

// buildNATS builds nats-server from the module cache (the version go.mod
// pins), once per test binary.
var buildNATS = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "promoengine-nats-server-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nats-server: %v\n%s", err, out)
	}
	return bin, nil
})

// NATSProcess is a nats-server with JetStream (file storage) running as a
// process of its own, so that a test can kill it with SIGKILL — a crash,
// with nothing flushed beyond what the server wrote to its files — and
// start it again on the same port and store.
type NATSProcess struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *testlog.Buffer
	done chan struct{}
}

// StartNATS builds and starts a nats-server; it is killed at cleanup.
func StartNATS(t testing.TB) *NATSProcess {
	t.Helper()
	bin, err := buildNATS()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	n := &NATSProcess{t: t, bin: bin, dir: t.TempDir(), port: port}
	n.Start()
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("nats-server log (last run):\n%s", n.log.String())
		}
	})
	return n
}

// URL is the client URL.
func (n *NATSProcess) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Start starts the server (again) and waits until JetStream answers.
func (n *NATSProcess) Start() {
	n.t.Helper()
	n.mu.Lock()
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir, "-n", "chaos")
	log := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(n.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.log, n.done = cmd, log, done
	n.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if n.answers() {
			return
		}
		select {
		case <-done:
			n.t.Fatalf("nats-server exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server not ready after 60s:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether JetStream answers an account info request.
func (n *NATSProcess) answers() bool {
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// Kill sends SIGKILL and waits for the process to end.
func (n *NATSProcess) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}
