package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Reloader serves a certificate and key from files, reloaded on change.
type Reloader struct {
	certFile, keyFile string
	log               zerolog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  fileStamp // of the pair loaded
	failed fileStamp // of the last pair that did not load, logged once
}

// fileStamp tells whether a file changed: modification time and size of
// both files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewReloader loads the pair; the files must hold a valid pair now.
func NewReloader(certFile, keyFile string, log zerolog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp = cert, stamp
	return r, nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %s with %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

func (r *Reloader) stat() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("certs: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("certs: %w", err)
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// Certificate returns the current pair, reloading it first when a file
// changed since it was loaded. Two stat calls per handshake are far cheaper
// than the handshake.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.stat()
	if err != nil || stamp == r.stamp || stamp == r.failed {
		return r.cert
	}
	cert, err := load(r.certFile, r.keyFile)
	if err != nil {
		r.failed = stamp
		r.log.Warn().Err(err).Msg("the changed TLS certificate does not load; still serving the previous one")
		return r.cert
	}
	r.cert, r.stamp, r.failed = cert, stamp, fileStamp{}
	r.log.Info().Str("cert_file", r.certFile).Str("subject", cert.Leaf.Subject.String()).
		Time("not_after", cert.Leaf.NotAfter).Msg("TLS certificate reloaded")
	return cert
}

// GetCertificate is tls.Config's hook.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// NotAfter is the expiry of the pair served (for the expiry metric).
func (r *Reloader) NotAfter() time.Time {
	return r.Certificate().Leaf.NotAfter
}

// ServerConfig is the TLS configuration of an HTTPS listener serving r.
func ServerConfig(r *Reloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
