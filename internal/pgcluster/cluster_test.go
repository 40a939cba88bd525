package pgcluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/pgcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLog sends what pgcluster says to the test log, shown on failure, a
// line at a time (tools write in arbitrary chunks).
type testLog struct {
	t       testing.TB
	mu      sync.Mutex
	partial []byte
}

func newTestLog(t testing.TB) *testLog { return &testLog{t: t} }

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		line, rest, found := bytes.Cut(l.partial, []byte("\n"))
		if !found {
			return len(p), nil
		}
		l.t.Log(string(line))
		l.partial = rest
	}
}

// start starts a throwaway cluster in a test directory and stops it when
// the test ends, before the directory is removed.
func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "pg")
	}
	opts.NoSync = true
	opts.Log = newTestLog(t)
	cluster, err := pgcluster.Start(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cluster.Stop(context.Background())) })
	return cluster
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close(context.Background())) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var value string
	require.NoError(t, conn.QueryRow(t.Context(), "SHOW "+setting).Scan(&value))
	return value
}

// alive tells whether pid runs and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()

	dir, err := pgcluster.FindBinDir()
	require.NoError(t, err)
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		require.FileExists(t, filepath.Join(dir, tool))
	}
}

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("Settings", func(t *testing.T) {
		t.Parallel()

		cluster := start(t, pgcluster.Options{})
		require.NotZero(t, cluster.Port())
		require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", cluster.Port()), cluster.URL("postgres"))
		require.FileExists(t, cluster.LogPath())

		conn := connect(t, cluster.URL("postgres"))
		require.Equal(t, "on", show(t, conn, "fsync"), "durable unless asked otherwise")
		require.Equal(t, "127.0.0.1", show(t, conn, "listen_addresses"))
		require.Equal(t, "200", show(t, conn, "max_connections"))
		require.Equal(t, "128MB", show(t, conn, "shared_buffers"))
		require.Equal(t, "UTF8", show(t, conn, "server_encoding"))
		require.Equal(t, cluster.Dir(), show(t, conn, "unix_socket_directories"))
	})

	t.Run("NoFsync", func(t *testing.T) {
		t.Parallel()

		cluster := start(t, pgcluster.Options{NoFsync: true})
		conn := connect(t, cluster.URL("postgres"))
		require.Equal(t, "off", show(t, conn, "fsync"))
		require.Equal(t, "off", show(t, conn, "full_page_writes"))
		require.Equal(t, "on", show(t, conn, "synchronous_commit"), "a server crash must not lose commits")
	})

	t.Run("RestartKeepsData", func(t *testing.T) {
		t.Parallel()

		dir := filepath.Join(t.TempDir(), "pg")
		first := start(t, pgcluster.Options{Dir: dir, NoFsync: true})
		conn := connect(t, first.URL("postgres"))
		_, err := conn.Exec(t.Context(), "CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")
		require.NoError(t, err)
		require.NoError(t, conn.Close(t.Context()))
		require.NoError(t, first.Stop(t.Context()))
		require.NoError(t, first.Stop(t.Context()), "stopping a stopped server is not an error")

		// A killed run can leave postmaster.pid behind with a pid that
		// now belongs to a live, unrelated process: ours.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), fmt.Appendf(nil, "%d\n%s\n", os.Getpid(), dir), 0o600))

		second := start(t, pgcluster.Options{Dir: dir, NoFsync: true})
		var id int
		require.NoError(t, connect(t, second.URL("postgres")).QueryRow(t.Context(), "SELECT id FROM kept").Scan(&id))
		require.Equal(t, 42, id)
	})

	t.Run("RestartAfterKill", func(t *testing.T) {
		t.Parallel()

		dir := filepath.Join(t.TempDir(), "pg")
		first := start(t, pgcluster.Options{Dir: dir, NoFsync: true})
		conn := connect(t, first.URL("postgres"))
		_, err := conn.Exec(t.Context(), "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
		require.NoError(t, err)

		pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
		require.NoError(t, err)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		// As after a real crash, the new run comes when the old server is gone.
		require.Eventually(t, func() bool { return !alive(pid) }, 30*time.Second, 10*time.Millisecond)

		second := start(t, pgcluster.Options{Dir: dir, NoFsync: true})
		var id int
		require.NoError(t, connect(t, second.URL("postgres")).QueryRow(t.Context(), "SELECT id FROM kept").Scan(&id))
		require.Equal(t, 7, id)
	})

	t.Run("AdoptsRunningServer", func(t *testing.T) {
		t.Parallel()

		first := start(t, pgcluster.Options{NoFsync: true})
		second, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: first.Dir(), Log: newTestLog(t)})
		require.NoError(t, err)
		require.Equal(t, first.Port(), second.Port())

		_, err = pgcluster.Start(t.Context(), pgcluster.Options{Dir: first.Dir(), Port: first.Port() + 1})
		require.Error(t, err, "a running server cannot move to another port")
	})

	t.Run("FixedPort", func(t *testing.T) {
		t.Parallel()

		probe := start(t, pgcluster.Options{NoFsync: true})
		port := probe.Port()
		require.NoError(t, probe.Stop(t.Context()))

		cluster := start(t, pgcluster.Options{Port: port, NoFsync: true})
		require.Equal(t, port, cluster.Port())
		require.Equal(t, fmt.Sprint(port), show(t, connect(t, cluster.URL("postgres")), "port"))
	})
}

func TestStartErrors(t *testing.T) {
	t.Parallel()

	t.Run("NoDir", func(t *testing.T) {
		t.Parallel()

		_, err := pgcluster.Start(t.Context(), pgcluster.Options{})
		require.ErrorContains(t, err, "Dir is required")
	})

	t.Run("NoBinaries", func(t *testing.T) {
		t.Parallel()

		_, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: t.TempDir(), BinDir: t.TempDir()})
		require.ErrorIs(t, err, pgcluster.ErrNoBinaries)
	})
}
