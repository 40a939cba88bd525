// Package certs serves TLS certificates from PEM files that an operator (or
// cert-manager, or certbot) replaces while the process runs: Reloader reads
// the certificate and key again when either file changes, at the next
// handshake, and keeps serving the previous pair while the new one does not
// load (a certificate written before its key, say), so renewing a
// certificate never needs a restart and never breaks a handshake.
//
// ServerConfig is the HTTPS configuration of the API listener: TLS 1.2 or
// later with Go's default cipher suites.
package certs
