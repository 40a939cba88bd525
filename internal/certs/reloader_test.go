package certs_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/certs"
	"github.com/promoengine/promoengine/internal/testtls"
)

// serve accepts TLS connections on loopback and completes their handshake.
func serve(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// servedName is the common name of the certificate the server presents,
// verified against the CA.
func servedName(t *testing.T, addr string, ca *testtls.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// replace writes a file and gives it a modification time of its own, so
// the change shows whatever the file system's time resolution.
func replace(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
	require.NoError(t, os.Chtimes(path, mod, mod))
}

func TestReloaderServesRenewedCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testtls.NewCA(t, "test CA")
	certFile, keyFile := ca.WritePair(t, dir, "api", "first", "127.0.0.1")
	r, err := certs.NewReloader(certFile, keyFile, zerolog.Nop())
	require.NoError(t, err)
	conf := certs.ServerConfig(r)
	require.Equal(t, uint16(tls.VersionTLS12), conf.MinVersion)
	addr := serve(t, conf)
	require.Equal(t, "first", servedName(t, addr, ca))
	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: testtls.NewCA(t, "another CA").Pool(), MinVersion: tls.VersionTLS12})
	require.Error(t, err, "a certificate of another CA is not trusted")

	// Renewed: the next handshake serves the new pair.
	certPEM, keyPEM := ca.Issue(t, "second", "127.0.0.1")
	mod := time.Now().Add(time.Minute)
	replace(t, certFile, certPEM, mod)
	replace(t, keyFile, keyPEM, mod)
	require.Equal(t, "second", servedName(t, addr, ca))

	// Half written (a new certificate, the old key): the previous pair stays.
	certPEM, _ = ca.Issue(t, "third", "127.0.0.1")
	replace(t, certFile, certPEM, mod.Add(time.Minute))
	require.Equal(t, "second", servedName(t, addr, ca))
	require.Equal(t, "second", servedName(t, addr, ca))
	// The key arrives: served.
	certPEM, keyPEM = ca.Issue(t, "fourth", "127.0.0.1")
	replace(t, keyFile, keyPEM, mod.Add(2*time.Minute))
	replace(t, certFile, certPEM, mod.Add(2*time.Minute))
	require.Equal(t, "fourth", servedName(t, addr, ca))
	require.WithinDuration(t, time.Now().Add(24*time.Hour), r.NotAfter(), time.Minute)

	// A file removed: the loaded pair goes on serving.
	require.NoError(t, os.Remove(keyFile))
	require.Equal(t, "fourth", servedName(t, addr, ca))
}

func TestReloaderRefusesABadPairAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testtls.NewCA(t, "test CA")
	certFile, _ := ca.WritePair(t, dir, "a", "a", "127.0.0.1")
	_, otherKey := ca.WritePair(t, dir, "b", "b", "127.0.0.1")
	_, err := certs.NewReloader(certFile, otherKey, zerolog.Nop())
	require.Error(t, err)
	_, err = certs.NewReloader(filepath.Join(dir, "missing.pem"), otherKey, zerolog.Nop())
	require.Error(t, err)
}
