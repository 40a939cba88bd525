package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promoengine/promoengine/internal/certs"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
)

// NATSSecurityOptions are the NATS connection options for TLS and NKeys
// (docs/SECURITY.md): PROMO_NATS_CA_FILE trusts the CA of the server's
// certificate, PROMO_NATS_CERT_FILE/KEY_FILE present a client certificate,
// PROMO_NATS_NKEY_FILE signs the server's nonce with an NKey seed.
// PROMO_NATS_CREDS (JWT credentials) is applied where the connection is
// built. A tls:// URL needs no option when the system roots trust the
// server.
func NATSSecurityOptions(cfg *config.Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.NATSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCAFile))
	}
	if cfg.NATSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCertFile, cfg.NATSKeyFile))
	}
	if cfg.NATSCAFile != "" || cfg.NATSCertFile != "" {
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if cfg.NATSNKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NATSNKeyFile)
		if err != nil {
			return nil, fmt.Errorf("PROMO_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, opt)
	}
	return opts, nil
}

// newOIDC is the token verifier of PROMO_OIDC_ISSUER (nil when unset). The
// issuer is discovered now so that a wrong URL shows in the start-up log;
// when it is unreachable the engine starts anyway (API keys work) and
// tokens are verified once it answers.
func (e *Engine) newOIDC(ctx context.Context) (*identity.OIDC, error) {
	if e.cfg.OIDCIssuer == "" {
		return nil, nil
	}
	o, err := identity.NewOIDC(identity.OIDCConfig{
		Issuer:     e.cfg.OIDCIssuer,
		Audience:   e.cfg.OIDCAudience,
		RolesClaim: e.cfg.OIDCRolesClaim,
		Log:        e.log.With().Str("component", "oidc").Logger(),
	})
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := o.Discover(dctx); err != nil {
		e.log.Warn().Err(err).Msg("OpenID Connect tokens are refused until the issuer answers; API keys work")
	}
	return o, nil
}

// listenTLS makes ln an HTTPS listener when PROMO_TLS_CERT_FILE is set,
// with the certificate reloaded on change and its expiry exported as
// promo_tls_cert_expiry_timestamp_seconds. It closes ln on failure.
func (e *Engine) listenTLS(ln net.Listener) (net.Listener, error) {
	if e.cfg.TLSCertFile == "" {
		return ln, nil
	}
	r, err := certs.NewReloader(e.cfg.TLSCertFile, e.cfg.TLSKeyFile, e.log.With().Str("component", "tls").Logger())
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("PROMO_TLS_CERT_FILE: %w", err)
	}
	e.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promo_tls_cert_expiry_timestamp_seconds",
		Help: "Expiry (Unix time) of the HTTPS certificate served; alert well before it.",
	}, func() float64 { return float64(r.NotAfter().Unix()) }))
	return tls.NewListener(ln, certs.ServerConfig(r)), nil
}
