package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
)

// validateSecurity checks the identity and TLS variables.
func (c *Config) validateSecurity() []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("PROMO_%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.OIDCIssuer != "" {
		u, err := url.Parse(c.OIDCIssuer)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("OIDC_ISSUER", "must be the issuer's URL, such as https://sso.example.com/realms/shop")
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			bad("OIDC_ISSUER", "must be https (plain http only on loopback, for tests)")
		}
		if c.OIDCAudience == "" {
			bad("OIDC_AUDIENCE", "is required when PROMO_OIDC_ISSUER is set: tokens must be meant for this engine")
		}
		if c.OIDCRolesClaim == "" {
			bad("OIDC_ROLES_CLAIM", "must not be empty (default roles)")
		}
	} else if c.OIDCAudience != "" {
		bad("OIDC_ISSUER", "is required when PROMO_OIDC_AUDIENCE is set")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLS_CERT_FILE", "and PROMO_TLS_KEY_FILE go together")
	} else if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			bad("TLS_CERT_FILE", "with PROMO_TLS_KEY_FILE: %v", err)
		}
	}
	if (c.NATSCertFile == "") != (c.NATSKeyFile == "") {
		bad("NATS_CERT_FILE", "and PROMO_NATS_KEY_FILE go together")
	}
	for _, f := range []struct{ name, path string }{{"NATS_CA_FILE", c.NATSCAFile}, {"NATS_CERT_FILE", c.NATSCertFile},
		{"NATS_KEY_FILE", c.NATSKeyFile}, {"NATS_NKEY_FILE", c.NATSNKeyFile}, {"NATS_CREDS", c.NATSCreds}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.name, "cannot read: %v", err)
		}
	}
	if c.NATSNKeyFile != "" && c.NATSCreds != "" {
		bad("NATS_NKEY_FILE", "set either PROMO_NATS_NKEY_FILE or PROMO_NATS_CREDS, not both")
	}
	return errs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
