package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// confFile holds the settings Start controls. It is rewritten at every
	// Start so that a reused data directory gets the port and durability
	// asked for this time, not the ones of the run that created it.
	confFile = "promoengine.conf"
	// logFile is the server log, inside the data directory so that a
	// non-root server can write it and it is removed along with the data.
	logFile = "postgres.log"
	// superuser is the role initdb creates; URL connects as it.
	superuser = "postgres"
	// maxSocketDirLen keeps the unix socket path ("<dir>/.s.PGSQL.<port>")
	// under the 107 bytes the kernel allows.
	maxSocketDirLen = 90
	// readyTimeout bounds how long pg_ctl, and adoption of a server that is
	// still starting, wait; crash recovery of a dev database takes seconds.
	readyTimeout = 2 * time.Minute
	// portAttempts is how often Start picks another free port when the one it
	// picked was taken in the meantime by a concurrent process.
	portAttempts = 3
)

// Options configures Start.
type Options struct {
	// Dir is the data directory (PGDATA). It is created and initialised with
	// initdb when it has no PG_VERSION, and reused as is otherwise.
	Dir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free port at every
	// Start; an adopted running server keeps the port it has.
	Port int
	// Log receives the output of initdb and pg_ctl and notes about what
	// Start changed on the machine. The server's own log is in LogPath. Nil
	// discards.
	Log io.Writer
	// BinDir overrides where initdb, pg_ctl and postgres are found; empty
	// means FindBinDir.
	BinDir string
	// NoSync makes initdb skip flushing the new cluster to disk: faster, and
	// safe as long as the machine does not crash right after.
	NoSync bool
	// ReplicaOf, when set, makes a new data directory a streaming replica
	// of that running cluster (pg_basebackup -R) instead of initialising it.
	ReplicaOf *Cluster
	// NoFsync turns off fsync and full_page_writes. Tests only: a crash of
	// the machine loses or corrupts the data. A crash of the server alone
	// loses nothing (synchronous_commit stays on: commits reach the kernel
	// before they are acknowledged), so tests that kill it stay truthful.
	NoFsync bool
}

// Cluster is a running PostgreSQL server started (or adopted) by Start.
type Cluster struct {
	dir    string
	binDir string
	port   int
	log    io.Writer
	user   *systemUser // nil unless the caller is root.
}

// Start initialises Options.Dir if needed and starts its server, or adopts
// the server already running on it. It is not safe to call concurrently on
// the same Dir, from one process or several; callers that share a Dir
// serialise with a lock of their own (see internal/testdb).
//
// A failed Start leaves no server running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{dir: dir, binDir: opts.BinDir, log: opts.Log}
	if c.log == nil {
		c.log = io.Discard
	}
	if c.binDir == "" {
		if c.binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !hasServerTools(c.binDir) {
		return nil, fmt.Errorf("%w in Options.BinDir %s (need %s)", ErrNoBinaries, c.binDir, strings.Join(serverTools, ", "))
	}
	if os.Geteuid() == 0 {
		if c.user, err = lookupOrCreateSystemUser(ctx, c.log); err != nil {
			return nil, err
		}
	}

	initialized, err := c.prepareDir()
	if err != nil {
		return nil, err
	}
	switch {
	case !initialized && opts.ReplicaOf != nil:
		if err := c.basebackup(ctx, opts.ReplicaOf); err != nil {
			return nil, err
		}
	case !initialized:
		if err := c.initdb(ctx, opts.NoSync); err != nil {
			return nil, err
		}
	}

	adopted, err := c.adoptRunning(ctx)
	if err != nil {
		return nil, err
	}
	if adopted {
		if opts.Port != 0 && opts.Port != c.port {
			return nil, fmt.Errorf("pgcluster: the server of %s is already running on port %d, not %d; stop it first", dir, c.port, opts.Port)
		}
		fmt.Fprintf(c.log, "pgcluster: reusing the server already running on %s (port %d)\n", dir, c.port)
		return c, nil
	}

	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		err := c.start(ctx, port, opts.NoFsync)
		if err == nil {
			c.port = port
			return c, nil
		}
		c.stopAfterFailedStart()
		// Another process may have bound the port between freePort and the
		// server's bind; only then is another port worth a try.
		if opts.Port != 0 || attempt == portAttempts || portIsFree(port) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// URL is the connection string of database dbname as the superuser.
func (c *Cluster) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Dir is the absolute data directory.
func (c *Cluster) Dir() string { return c.dir }

// LogPath is the server's log file, the first place to look when a query
// fails for reasons the client error does not explain.
func (c *Cluster) LogPath() string { return filepath.Join(c.dir, logFile) }

// Stop shuts the server down: "fast" mode first (roll back open
// transactions, disconnect clients, checkpoint), "immediate" if that fails.
// Stopping a server that is not running is not an error.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.running() {
		return nil
	}
	fastErr := c.run(ctx, "pg_ctl", "stop", "-D", c.dir, "-m", "fast", "-w", "-t", "60")
	if fastErr == nil || !c.running() {
		return nil
	}
	immediateErr := c.run(ctx, "pg_ctl", "stop", "-D", c.dir, "-m", "immediate", "-w", "-t", "30")
	if immediateErr == nil || !c.running() {
		return nil
	}
	return fmt.Errorf("pgcluster: stop %s: %w", c.dir, errors.Join(fastErr, immediateErr))
}

// prepareDir creates the data directory for the user the server runs as and
// reports whether it already holds a cluster.
func (c *Cluster) prepareDir() (bool, error) {
	if err := os.MkdirAll(filepath.Dir(c.dir), 0o755); err != nil {
		return false, fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("pgcluster: %w", err)
	}
	_, err := os.Stat(filepath.Join(c.dir, "PG_VERSION"))
	initialized := err == nil
	if c.user != nil {
		if !initialized {
			if err := chown(c.dir, c.user); err != nil {
				return false, err
			}
		}
		if err := makeTraversable(c.dir, c.user, c.log); err != nil {
			return false, err
		}
	}
	return initialized, nil
}

// initdb creates the cluster. The C locale makes sorting and case mapping
// the same on every machine, whatever locales happen to be installed;
// UTF8 is what the application stores.
func (c *Cluster) initdb(ctx context.Context, noSync bool) error {
	args := []string{"-D", c.dir, "--auth=trust", "--username=" + superuser, "--encoding=UTF8", "--locale=C"}
	if noSync {
		args = append(args, "--no-sync")
	}
	if err := c.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	conf, err := os.OpenFile(filepath.Join(c.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, err = fmt.Fprintf(conf, "\n# Added by promoengine (internal/pgcluster): settings it controls.\ninclude '%s'\n", confFile)
	if closeErr := conf.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// basebackup copies a running primary into the data directory as a
// streaming replica (standby.signal and primary_conninfo written by -R).
// initdb's trust authentication lets replication connections in on
// loopback.
func (c *Cluster) basebackup(ctx context.Context, primary *Cluster) error {
	err := c.run(ctx, "pg_basebackup", "-D", c.dir, "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port),
		"-U", superuser, "-X", "stream", "-R", "--checkpoint=fast")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_basebackup from port %d: %w", primary.port, err)
	}
	return nil
}

// Restart restarts the server with pg_ctl restart -m mode ("immediate"
// is a crash: no checkpoint, crash recovery at start; "fast" a clean
// stop). It keeps its port.
func (c *Cluster) Restart(ctx context.Context, mode string) error {
	err := c.run(ctx, "pg_ctl", "restart", "-D", c.dir, "-m", mode, "-l", c.LogPath(), "-w", "-t", strconv.Itoa(int(readyTimeout.Seconds())))
	if err != nil {
		return fmt.Errorf("pgcluster: restart %s -m %s: %w", c.dir, mode, err)
	}
	return nil
}

// adoptRunning reports whether the server of the data directory is already
// running and ready, and removes a postmaster.pid its server left behind.
func (c *Cluster) adoptRunning(ctx context.Context) (bool, error) {
	deadline := time.Now().Add(readyTimeout)
	for {
		pm, ok, err := readPostmasterPID(c.dir)
		if err != nil || !ok {
			return false, err
		}
		if !isLivePostgres(pm.pid) {
			fmt.Fprintf(c.log, "pgcluster: removing stale postmaster.pid of pid %d from %s\n", pm.pid, c.dir)
			if err := os.Remove(filepath.Join(c.dir, "postmaster.pid")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("pgcluster: %w", err)
			}
			return false, nil
		}
		// A server reported ready may be dying (killed a moment ago, its pid
		// not reaped yet): adopt it only once it answers.
		if pm.status == "ready" && pm.port > 0 && answers(pm.port) {
			c.port = pm.port
			return true, nil
		}
		// Starting (crash recovery), stopping or dying: wait until it is
		// running or gone.
		if time.Now().After(deadline) {
			return false, fmt.Errorf("pgcluster: server pid %d of %s neither ready nor stopped after %s (status %q)", pm.pid, c.dir, readyTimeout, pm.status)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("pgcluster: waiting for server of %s: %w", c.dir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start writes the settings and starts the server with pg_ctl, which
// detaches it in its own session: a Ctrl-C meant for the caller does not
// kill it, Stop does.
func (c *Cluster) start(ctx context.Context, port int, noFsync bool) error {
	if err := c.writeConf(port, noFsync); err != nil {
		return err
	}
	err := c.run(ctx, "pg_ctl", "start", "-D", c.dir, "-l", c.LogPath(), "-w", "-t", strconv.Itoa(int(readyTimeout.Seconds())))
	if err != nil {
		return fmt.Errorf("pgcluster: start server of %s on port %d: %w\nlast lines of %s:\n%s", c.dir, port, err, c.LogPath(), tailLines(c.LogPath(), 20))
	}
	return nil
}

func (c *Cluster) writeConf(port int, noFsync bool) error {
	// A path PostgreSQL cannot take as a socket directory (too long for a
	// unix socket, or needing escapes in a list) means TCP only: pg_ctl
	// waits on postmaster.pid, not on the socket, so nothing else depends on it.
	socketDir := c.dir
	if len(socketDir) > maxSocketDirLen || strings.ContainsAny(socketDir, `,'\"`) {
		socketDir = ""
	}
	fsync := "on"
	if noFsync {
		fsync = "off"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by promoengine (internal/pgcluster) at every start: edits are lost.\n")
	fmt.Fprintf(&b, "listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", port)
	fmt.Fprintf(&b, "unix_socket_directories = '%s'\n", socketDir)
	fmt.Fprintf(&b, "max_connections = 200\n")
	fmt.Fprintf(&b, "shared_buffers = 128MB\n")
	fmt.Fprintf(&b, "fsync = %s\n", fsync)
	if noFsync {
		fmt.Fprintf(&b, "full_page_writes = off\n")
	}
	path := filepath.Join(c.dir, confFile)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return chown(path, c.user)
}

// stopAfterFailedStart stops a server that pg_ctl started but gave up
// waiting for (timeout, cancelled context), so a failed Start leaves no
// orphan. It runs on its own context because the caller's may be done.
func (c *Cluster) stopAfterFailedStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.running() {
		_ = c.run(ctx, "pg_ctl", "stop", "-D", c.dir, "-m", "immediate", "-w", "-t", "30")
	}
}

func (c *Cluster) running() bool {
	pm, ok, err := readPostmasterPID(c.dir)
	return err == nil && ok && isLivePostgres(pm.pid)
}

// run runs a PostgreSQL tool as the server's user, in the data directory
// (the user may not be allowed into the caller's working directory).
func (c *Cluster) run(ctx context.Context, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, tool), args...)
	cmd.Dir = c.dir
	cmd.Env = c.env()
	if c.user != nil {
		cmd.SysProcAttr = c.user.credential()
	}
	return runLogged(c.log, cmd)
}

// env is the caller's environment without what would make the tools act on
// another cluster (PGDATA, PGPORT...) or depend on the machine's locales.
func (c *Cluster) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		if c.user != nil && (name == "HOME" || name == "USER" || name == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	if c.user != nil {
		env = append(env, "HOME="+c.dir, "USER="+c.user.name, "LOGNAME="+c.user.name)
	}
	return env
}

// runLogged runs cmd with its output on log and, on failure, in the error.
func runLogged(log io.Writer, cmd *exec.Cmd) error {
	var tail tailBuffer
	out := io.MultiWriter(log, &tail)
	cmd.Stdout, cmd.Stderr = out, out
	// pg_ctl's child shell redirects the server's output to the log file;
	// should anything still hold our pipe, do not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(tail.Bytes()))
	}
	return nil
}

// tailBuffer keeps the last few KiB written to it: enough for an error
// message, bounded however chatty the tool.
type tailBuffer struct{ buf []byte }

const tailBufferSize = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBufferSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBufferSize:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }

func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// answers tells whether a PostgreSQL server answers on the port. It sends
// an SSLRequest, which any server answers with one byte before
// authentication; a mere TCP connect also succeeds on a dying server whose
// listening socket is not closed yet.
func answers(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return false
	}
	sslRequest := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f} // Length 8, code 80877103.
	if _, err := conn.Write(sslRequest); err != nil {
		return false
	}
	reply := make([]byte, 1)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return false
	}
	return reply[0] == 'N' || reply[0] == 'S'
}

func portIsFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
