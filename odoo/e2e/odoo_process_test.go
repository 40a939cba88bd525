package e2e_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/pgcluster"
)

// The pieces that run Odoo from a source tree: Debian's Python, a private
// PostgreSQL cluster (internal/pgcluster), a database installed once with
// point_of_sale, pos_loyalty and base_automation and kept as a template, the
// addons of this repository, and an Odoo server.

const python = "/usr/bin/python3"

// pythonModules are what Odoo 17/18 imports at start; Debian packages them
// as python3-<name> (see docs/ODOO.md, "Testing against a real Odoo").
var pythonModules = []string{"babel", "dateutil", "decorator", "docutils", "gevent", "greenlet", "jinja2", "sass",
	"lxml", "markupsafe", "num2words", "passlib", "PIL", "polib", "psutil", "psycopg2", "pydot", "OpenSSL", "PyPDF2",
	"qrcode", "reportlab", "requests", "rjsmin", "stdnum", "pytz", "urllib3", "vobject", "werkzeug", "xlsxwriter",
	"xlrd", "zeep"}

const aptPackages = "python3-babel python3-dateutil python3-decorator python3-docutils python3-gevent python3-greenlet " +
	"python3-jinja2 python3-libsass python3-lxml python3-markupsafe python3-num2words python3-ofxparse python3-passlib " +
	"python3-pil python3-polib python3-psutil python3-psycopg2 python3-pydot python3-openssl python3-pypdf2 " +
	"python3-qrcode python3-reportlab python3-requests python3-rjsmin python3-stdnum python3-tz python3-urllib3 " +
	"python3-vobject python3-werkzeug python3-xlsxwriter python3-xlrd python3-zeep"

// odooVersion reads the major version of the tree at src (0 when it is not
// an Odoo tree).
func odooVersion(src string) int {
	b, err := os.ReadFile(filepath.Join(src, "odoo", "release.py"))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^version_info\s*=\s*\(\s*(?:'saas~)?(\d+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

func checkPython(t *testing.T) {
	t.Helper()
	script := "import importlib, sys\nmissing = []\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n    except Exception: missing.append(m)\nprint(' '.join(missing))\n"
	out, err := exec.Command(python, append([]string{"-c", script}, pythonModules...)...).Output()
	if err != nil {
		t.Fatalf("%s does not run (%v): apt-get install python3 %s", python, err, aptPackages)
	}
	if missing := strings.TrimSpace(string(out)); missing != "" {
		t.Fatalf("Python modules missing for Odoo: %s\napt-get install %s", missing, aptPackages)
	}
}

// odooEnv is one Odoo database and how to run Odoo on it.
type odooEnv struct {
	t       *testing.T
	src     string
	version int
	dir     string // cache: the cluster, Odoo's data dir, logs
	cluster *pgcluster.Cluster
	db      string
	addons  string // --addons-path
}

// workDir is where the cluster and the installed template survive between
// runs ($ODOO_E2E_DIR, default under the system's temporary directory).
func workDir() string {
	if d := os.Getenv("ODOO_E2E_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "promoengine-odoo-e2e")
}

func setupOdoo(ctx context.Context, t *testing.T, src string, version int) *odooEnv {
	t.Helper()
	dir := workDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o755))
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), NoFsync: true, Log: testWriter{t}})
	require.NoError(t, err, "private PostgreSQL for Odoo")
	root, err := filepath.Abs(filepath.Join("..")) // the repository's odoo/ folder
	require.NoError(t, err)
	e := &odooEnv{t: t, src: src, version: version, dir: dir, cluster: cluster,
		addons: strings.Join([]string{filepath.Join(src, "addons"), filepath.Join(src, "odoo", "addons"), root}, ",")}
	e.sql(ctx, "postgres", `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo') THEN CREATE ROLE odoo LOGIN SUPERUSER; END IF; END $$`)

	// The template: Odoo with the POS apps, without demo data (~1 min on
	// 2 cores), installed once per source tree.
	sum := sha256.Sum256([]byte(src))
	base := fmt.Sprintf("promo_e2e_base_%d_%x", version, sum[:4])
	if !e.dbExists(ctx, base) {
		t.Logf("installing Odoo %d (point_of_sale, pos_loyalty, base_automation) into the template %s; about a minute", version, base)
		start := time.Now()
		e.db = base + "_tmp"
		e.dropDB(ctx, e.db)
		e.odooBin(ctx, "install", "-i", "point_of_sale,pos_loyalty,base_automation", "--without-demo=all", "--stop-after-init")
		e.sql(ctx, "postgres", fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, pgx.Identifier{e.db}.Sanitize(), pgx.Identifier{base}.Sanitize()))
		require.NoError(t, os.Rename(filepath.Join(dir, "data", "filestore", e.db), filepath.Join(dir, "data", "filestore", base)))
		t.Logf("template installed in %s", time.Since(start).Round(time.Second))
	}
	e.db = fmt.Sprintf("promo_e2e_%s", time.Now().UTC().Format("20060102_150405"))
	e.sql(ctx, "postgres", fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, pgx.Identifier{e.db}.Sanitize(), pgx.Identifier{base}.Sanitize()))
	out, err := exec.Command("cp", "-a", filepath.Join(dir, "data", "filestore", base), filepath.Join(dir, "data", "filestore", e.db)).CombinedOutput()
	require.NoError(t, err, "copy the filestore: %s", out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Odoo database %s and its logs in %s are kept for inspection", e.db, filepath.Join(dir, "logs"))
			return
		}
		e.dropDB(context.Background(), e.db)
		_ = os.RemoveAll(filepath.Join(dir, "data", "filestore", e.db))
	})
	return e
}

func (e *odooEnv) sql(ctx context.Context, db, stmt string) {
	e.t.Helper()
	conn, err := pgx.Connect(ctx, e.cluster.URL(db))
	require.NoError(e.t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	require.NoError(e.t, err, stmt)
}

func (e *odooEnv) dbExists(ctx context.Context, db string) bool {
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	require.NoError(e.t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(e.t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, db).Scan(&n))
	return n == 1
}

func (e *odooEnv) dropDB(ctx context.Context, db string) {
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{db}.Sanitize()+` WITH (FORCE)`)
}

// args are the options every Odoo command of this database takes.
func (e *odooEnv) args() []string {
	return []string{"--addons-path=" + e.addons, "--db_host=127.0.0.1", "--db_port=" + strconv.Itoa(e.cluster.Port()),
		"--db_user=odoo", "--data-dir=" + filepath.Join(e.dir, "data"), "-d", e.db, "--db-filter=^" + e.db + "$"}
}

// odooBin runs odoo-bin to the end, its output in logs/<db>-<name>.log.
func (e *odooEnv) odooBin(ctx context.Context, name string, args ...string) string {
	e.t.Helper()
	logPath := filepath.Join(e.dir, "logs", e.db+"-"+name+".log")
	f, err := os.Create(logPath)
	require.NoError(e.t, err)
	defer f.Close()
	cmd := exec.CommandContext(ctx, python, append(append([]string{filepath.Join(e.src, "odoo-bin")}, e.args()...), args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	log, _ := os.ReadFile(logPath)
	require.NoError(e.t, err, "odoo-bin %s failed; log %s:\n%s", name, logPath, tail(string(log), 60))
	return string(log)
}

// shell runs a Python script in `odoo-bin shell` and returns the JSON it
// printed on a line starting with "RESULT ".
func (e *odooEnv) shell(ctx context.Context, name, script string, out any) {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, python, append(append([]string{filepath.Join(e.src, "odoo-bin"), "shell"}, e.args()...), "--no-http", "--log-level=warn")...)
	cmd.Stdin = strings.NewReader(script)
	b, err := cmd.CombinedOutput()
	require.NoError(e.t, os.WriteFile(filepath.Join(e.dir, "logs", e.db+"-"+name+".log"), b, 0o644))
	require.NoError(e.t, err, "odoo-bin shell %s:\n%s", name, tail(string(b), 60))
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			require.NoError(e.t, json.Unmarshal([]byte(line), out), line)
			return
		}
	}
	e.t.Fatalf("odoo-bin shell %s printed no RESULT:\n%s", name, tail(string(b), 60))
}

// odooServer is a running Odoo.
type odooServer struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{}
}

func (e *odooEnv) startServer(t *testing.T) *odooServer {
	t.Helper()
	port, gport := freePort(t), freePort(t)
	logPath := filepath.Join(e.dir, "logs", e.db+"-server.log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	portFlag := "--http-port"
	args := append([]string{filepath.Join(e.src, "odoo-bin")}, e.args()...)
	args = append(args, portFlag+"="+strconv.Itoa(port), "--gevent-port="+strconv.Itoa(gport), "--http-interface=127.0.0.1",
		"--workers=0", "--max-cron-threads=1")
	cmd := exec.Command(python, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	s := &odooServer{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(s.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("Odoo exited at start:\n%s", tail(string(b), 60))
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			_ = c.Close()
			return s
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Odoo did not listen within 3 minutes; log %s", logPath)
	return nil
}

// logText returns what the server logged so far.
func (s *odooServer) logText() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// rpcClient is a JSON-RPC client of the Odoo under test, returned once
// Odoo authenticates the login (a server just started takes a moment).
func rpcClient(ctx context.Context, t *testing.T, url, db, login, key string) *odoo.Client {
	t.Helper()
	c, err := odoo.New(odoo.Config{URL: url, DB: db, Login: login, APIKey: config.Secret(key),
		Timeout: 3 * time.Minute, Log: zerolog.Nop()})
	require.NoError(t, err)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := c.Authenticate(ctx)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Odoo does not authenticate %s: %v", login, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// runStep runs a step of a real-Odoo test as a subtest, with the test's
// *testing.T swapped for the subtest's (swap) while it runs, so that the
// helpers fail the subtest; a failed step stops the test, since the next
// ones build on it.
func runStep(parent *testing.T, name string, swap func(*testing.T), step func(t *testing.T)) {
	ok := parent.Run(name, func(t *testing.T) {
		swap(t)
		defer swap(parent)
		step(t)
	})
	if !ok {
		parent.FailNow()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustRegexp(p string) *regexp.Regexp { return regexp.MustCompile(p) }
