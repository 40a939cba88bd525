package testdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/internal/pgcluster"
)

const (
	// envURL names the server to use instead of finding or starting one.
	envURL = "PROMO_TEST_DATABASE_URL"
	// privateDirName is the directory, under os.TempDir, of the private
	// cluster shared by the test binaries of a run.
	privateDirName = "promoengine-testpg"
	// localServer is where a developer's own PostgreSQL usually listens.
	localServer = "127.0.0.1:5432"
)

// server is the PostgreSQL server the test binary uses.
type server struct {
	admin   url.URL // the database administrative statements run in.
	private bool    // the private cluster: orphaned databases can be reaped.
	source  string  // where the server came from, for error messages.
}

// url is the connection string of database dbname on the server.
func (s *server) url(dbname string) string {
	u := s.admin
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String()
}

// exec runs one administrative statement on a connection of its own.
// CREATE and DROP DATABASE cannot run in a transaction, and a connection
// per statement leaves no pool (and no goroutine) behind when the tests end.
func (s *server) exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.admin.String())
	if err != nil {
		return fmt.Errorf("testdb: connect to %s: %w", s.source, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("testdb: %s: %w", sql, err)
	}
	return nil
}

// findServer picks the server as described in the package documentation.
func findServer(ctx context.Context) (*server, error) {
	if raw := os.Getenv(envURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("testdb: %s must be a postgres:// URL", envURL)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/postgres"
		}
		srv := &server{admin: *u, source: envURL}
		if err := checkCanCreate(ctx, srv); err != nil {
			return nil, err
		}
		return srv, nil
	}

	roles := []string{"postgres"}
	if current, err := user.Current(); err == nil && current.Username != "postgres" {
		roles = append(roles, current.Username)
	}
	for _, role := range roles {
		u := url.URL{Scheme: "postgres", User: url.User(role), Host: localServer, Path: "/postgres"}
		srv := &server{admin: u, source: fmt.Sprintf("the server on %s as %q", localServer, role)}
		if checkCanCreate(ctx, srv) == nil {
			return srv, nil
		}
	}
	return startPrivate(ctx)
}

// checkCanCreate tells whether the server answers and lets its role create
// databases, the one privilege testdb needs.
func checkCanCreate(ctx context.Context, srv *server) error {
	cfg, err := pgx.ParseConfig(srv.admin.String())
	if err != nil {
		return fmt.Errorf("testdb: %s: %w", srv.source, err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("testdb: connect to %s: %w", srv.source, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var canCreate bool
	err = conn.QueryRow(ctx, "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&canCreate)
	if err != nil {
		return fmt.Errorf("testdb: %s: %w", srv.source, err)
	}
	if !canCreate {
		return fmt.Errorf("testdb: %s: role may not create databases", srv.source)
	}
	return nil
}

// startPrivate starts, or adopts, the private cluster shared by the test
// binaries of the run. The file lock serialises them: one runs initdb and
// starts the server, the others find it running and adopt it.
func startPrivate(ctx context.Context) (*server, error) {
	root := filepath.Join(os.TempDir(), privateDirName)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	defer lock.Close() // Closing releases the lock, also when the process dies.
	if err := flock(ctx, lock); err != nil {
		return nil, err
	}

	logPath := filepath.Join(root, "pgcluster.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	defer log.Close()
	fmt.Fprintf(log, "--- %s pid %d (%s)\n", time.Now().Format(time.RFC3339), os.Getpid(), filepath.Base(os.Args[0]))

	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:     filepath.Join(root, "data"),
		Log:     log,
		NoSync:  true,
		NoFsync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("testdb: no %s set, no usable server on %s, and the private cluster in %s did not start (see %s): %w",
			envURL, localServer, root, logPath, err)
	}
	u, err := url.Parse(cluster.URL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	return &server{admin: *u, private: true, source: "the private cluster in " + cluster.Dir()}, nil
}

// flock takes an exclusive lock on f, polling so that ctx can end the wait.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) //nolint:gosec // fds fit in int.
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("testdb: lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testdb: waiting for lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
