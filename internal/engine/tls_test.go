package engine_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testtls"
)

// tlsPostgres starts a private PostgreSQL cluster that serves TLS with a
// certificate of ca for hosts, and returns its port.
func tlsPostgres(t *testing.T, ca *testtls.CA, hosts ...string) int {
	t.Helper()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "pg")
	opts := pgcluster.Options{Dir: dir, NoSync: true, NoFsync: true}
	cluster, err := pgcluster.Start(ctx, opts)
	require.NoError(t, err)
	require.NoError(t, cluster.Stop(ctx))

	// The server reads its key only when the server's user owns it and no
	// one else may read it.
	info, err := os.Stat(dir)
	require.NoError(t, err)
	owner := info.Sys().(*syscall.Stat_t)
	certPEM, keyPEM := ca.Issue(t, "postgres", hosts...)
	for name, data := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		require.NoError(t, os.Chown(path, int(owner.Uid), int(owner.Gid)))
	}
	conf, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintln(conf, "ssl = on\nssl_min_protocol_version = 'TLSv1.2'")
	require.NoError(t, err)
	require.NoError(t, conf.Close())

	cluster, err = pgcluster.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cluster.Stop(context.Background())) })
	return cluster.Port()
}

// tlsNATS starts a JetStream server that speaks TLS only, verifies client
// certificates of ca and admits one NKey user; it returns the URL and the
// user's seed file.
func tlsNATS(t *testing.T, ca *testtls.CA, dir string) (string, string) {
	t.Helper()
	certFile, keyFile := ca.WritePair(t, dir, "nats-server", "nats", "127.0.0.1")
	tlsConf, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: ca.WriteCA(t, dir), Verify: true})
	require.NoError(t, err)
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	seedFile := filepath.Join(dir, "engine.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))

	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(dir, "js"),
		TLS: true, TLSVerify: true, TLSConfig: tlsConf, TLSTimeout: 5,
		Nkeys: []*server.NkeyUser{{Nkey: pub}},
	})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second))
	return fmt.Sprintf("tls://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port), seedFile
}

// TestTLSEverywhere runs the engine with HTTPS, NATS over TLS with a client
// certificate and an NKey, and PostgreSQL with sslmode=verify-full, all on
// loopback with a CA made for the test, and checks that each refuses what
// it must.
func TestTLSEverywhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := testtls.NewCA(t, "promoengine test CA")
	caFile := ca.WriteCA(t, dir)
	other := testtls.NewCA(t, "another CA")
	otherDir := t.TempDir()
	otherCAFile := other.WriteCA(t, otherDir)

	pgPort := tlsPostgres(t, ca, "127.0.0.1")
	natsURL, seedFile := tlsNATS(t, ca, dir)
	clientCert, clientKey := ca.WritePair(t, dir, "engine-client", "promoengine", "promoengine")
	apiCert, apiKey := ca.WritePair(t, dir, "api", "api-1", "127.0.0.1")

	dbURL := func(host, rootCert string) string {
		q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {rootCert}}
		return fmt.Sprintf("postgres://postgres@%s:%d/postgres?%s", host, pgPort, q.Encode())
	}
	// PostgreSQL, verify-full: the server's certificate must chain to the
	// given CA and name the host connected to.
	conn, err := pgx.Connect(ctx, dbURL("127.0.0.1", caFile))
	require.NoError(t, err)
	var ssl bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl))
	require.True(t, ssl)
	require.NoError(t, conn.Close(ctx))
	for what, u := range map[string]string{
		"another CA":                 dbURL("127.0.0.1", otherCAFile),
		"a name the cert lacks":      dbURL("localhost", caFile),
		"no CA: the system roots do": fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=verify-full", pgPort),
	} {
		_, err := pgx.Connect(ctx, u)
		require.Error(t, err, what)
		t.Logf("refused, %s: %v", what, err)
	}

	base, err := config.Load()
	require.NoError(t, err)
	cfg := *base
	cfg.NATSURL, cfg.NATSCAFile, cfg.NATSCertFile, cfg.NATSKeyFile, cfg.NATSNKeyFile = natsURL, caFile, clientCert, clientKey, seedFile
	cfg.DatabaseURL = dbURL("127.0.0.1", caFile)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.TLSCertFile, cfg.TLSKeyFile = apiCert, apiKey
	cfg.APIKeys = config.APIKeys{{Key: "k-admin", Role: config.RoleAdmin}}
	require.NoError(t, cfg.Validate())
	log := zerolog.Nop()

	// NATS refuses a client that lacks any of: the CA, its certificate, the
	// NKey.
	for what, change := range map[string]func(*config.Config){
		"another CA":            func(c *config.Config) { c.NATSCAFile = otherCAFile },
		"no client certificate": func(c *config.Config) { c.NATSCertFile, c.NATSKeyFile = "", "" },
		"no NKey":               func(c *config.Config) { c.NATSNKeyFile = "" },
	} {
		bad := cfg
		change(&bad)
		nc, _, pool, err := engine.Connect(ctx, &bad, log)
		if err == nil {
			nc.Close()
			pool.Close()
		}
		require.Error(t, err, what)
		t.Logf("refused, %s: %v", what, err)
	}

	e, err := engine.Start(ctx, &cfg, []string{config.WorkerAPI}, log)
	require.NoError(t, err)
	defer e.Stop()
	state, err := e.NC.TLSConnectionState()
	require.NoError(t, err)
	require.Equal(t, "nats", state.PeerCertificates[0].Subject.CommonName)
	var allSSL bool
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'promoengine'`).Scan(&allSSL))
	require.True(t, allSSL, "every connection of the engine's pool is TLS")

	// HTTPS, with the certificate renewed while the engine runs.
	get := func(roots *testtls.CA) (*http.Response, error) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			ForceAttemptHTTP2: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots.Pool(), MinVersion: tls.VersionTLS12},
		}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+e.HTTPAddr()+"/readyz", nil)
		require.NoError(t, err)
		return client.Do(req)
	}
	resp, err := get(ca)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "api-1", resp.TLS.PeerCertificates[0].Subject.CommonName)
	require.Equal(t, 2, resp.ProtoMajor, "HTTP/2 over TLS")
	_, err = get(other)
	require.Error(t, err, "a client that does not trust the CA refuses the server")
	plain, err := http.Get("http://" + e.HTTPAddr() + "/healthz")
	if err == nil {
		plain.Body.Close()
		require.Equal(t, http.StatusBadRequest, plain.StatusCode, "plain HTTP is not served")
	}

	certPEM, keyPEM := ca.Issue(t, "api-2", "127.0.0.1")
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.WriteFile(apiKey, keyPEM, 0o600))
	require.NoError(t, os.WriteFile(apiCert, certPEM, 0o600))
	require.NoError(t, os.Chtimes(apiKey, later, later))
	require.NoError(t, os.Chtimes(apiCert, later, later))
	resp, err = get(ca)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "api-2", resp.TLS.PeerCertificates[0].Subject.CommonName, "the renewed certificate is served without a restart")
}

// TestNATSCredentialsFileOverTLS connects the engine to a NATS server in
// operator mode (decentralised JWT auth) with PROMO_NATS_CREDS over TLS,
// and uses JetStream through it.
func TestNATSCredentialsFileOverTLS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := testtls.NewCA(t, "promoengine test CA")
	certFile, keyFile := ca.WritePair(t, dir, "nats-server", "nats", "127.0.0.1")
	tlsConf, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile})
	require.NoError(t, err)

	operator, err := nkeys.CreateOperator()
	require.NoError(t, err)
	operatorPub, err := operator.PublicKey()
	require.NoError(t, err)
	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	accountPub, err := account.PublicKey()
	require.NoError(t, err)
	ac := jwt.NewAccountClaims(accountPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accountJWT, err := ac.Encode(operator)
	require.NoError(t, err)
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	userPub, err := user.PublicKey()
	require.NoError(t, err)
	userJWT, err := jwt.NewUserClaims(userPub).Encode(account)
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	require.NoError(t, err)
	credsFile := filepath.Join(dir, "engine.creds")
	require.NoError(t, os.WriteFile(credsFile, creds, 0o600))

	// Operator mode needs a system account.
	system, err := nkeys.CreateAccount()
	require.NoError(t, err)
	systemPub, err := system.PublicKey()
	require.NoError(t, err)
	systemJWT, err := jwt.NewAccountClaims(systemPub).Encode(operator)
	require.NoError(t, err)
	resolver := &server.MemAccResolver{}
	require.NoError(t, resolver.Store(accountPub, accountJWT))
	require.NoError(t, resolver.Store(systemPub, systemJWT))
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(dir, "js"),
		TLS: true, TLSConfig: tlsConf, TLSTimeout: 5,
		TrustedOperators: []*jwt.OperatorClaims{jwt.NewOperatorClaims(operatorPub)},
		AccountResolver:  resolver,
		SystemAccount:    systemPub,
	})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second))

	base, err := config.Load()
	require.NoError(t, err)
	cfg := *base
	cfg.NATSURL = fmt.Sprintf("tls://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
	cfg.NATSCAFile, cfg.NATSCreds = ca.WriteCA(t, dir), credsFile
	cfg.DatabaseURL = testdb.NewDatabase(t)
	require.NoError(t, cfg.Validate())

	nc, js, pool, err := engine.Connect(ctx, &cfg, zerolog.Nop())
	require.NoError(t, err)
	defer pool.Close()
	defer nc.Close()
	info, err := js.AccountInfo(ctx)
	require.NoError(t, err, "JetStream through the account of the credentials")
	require.NotNil(t, info)

	cfg.NATSCreds = ""
	_, _, _, err = engine.Connect(ctx, &cfg, zerolog.Nop())
	require.Error(t, err, "no credentials, no connection")
	t.Logf("refused without credentials: %v", err)
}
