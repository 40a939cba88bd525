// Package config reads promoengine's configuration from the environment
// (prefix PROMO_, SPEC §9) once, validates it with messages that name the
// variable, and renders it for the log with secrets masked. Packages under
// pkg/ never read the environment; everything flows from here.
package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/promoengine/promoengine/internal/identity"
)

// Prefix of every variable.
const Prefix = "PROMO"

// Worker names for PROMO_WORKERS and `run --workers`.
const (
	WorkerOrders = "orders"
	WorkerOutbox = "outbox"
	WorkerOdoo   = "odoo"
	WorkerJobs   = "jobs"
	WorkerAPI    = "api"
)

// AllWorkers is the default set, in start order.
var AllWorkers = []string{WorkerOrders, WorkerOutbox, WorkerOdoo, WorkerJobs, WorkerAPI}

// Roles of API keys.
const (
	RolePOS   = identity.RolePOS
	RoleAdmin = identity.RoleAdmin
	// RoleWebhook may only call POST /v1/odoo/webhook, which records an
	// order id for the engine to read back from Odoo: the key sits in an
	// Odoo automation rule's URL and in Odoo's logs, so it must not quote,
	// publish or read customers.
	RoleWebhook = identity.RoleWebhook
)

// Config is the whole configuration.
type Config struct {
	NATSURL   string `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	NATSCreds string `envconfig:"NATS_CREDS"`

	DatabaseURL string `envconfig:"DATABASE_URL"`
	// DatabaseMaxConns sizes the pool; 0 picks the larger of lanes and
	// transactions (as the order worker resolves them), + 8.
	DatabaseMaxConns int32 `envconfig:"DATABASE_MAX_CONNS" default:"0"`

	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080"`

	OdooURL        string        `envconfig:"ODOO_URL"`
	OdooDB         string        `envconfig:"ODOO_DB"`
	OdooLogin      string        `envconfig:"ODOO_LOGIN"`
	OdooAPIKey     Secret        `envconfig:"ODOO_API_KEY"`
	OdooAPIKeyFile string        `envconfig:"ODOO_API_KEY_FILE"`
	OdooModel      string        `envconfig:"ODOO_MODEL" default:"pos.order"`
	OdooMethod     string        `envconfig:"ODOO_METHOD" default:"promo_engine_apply"`
	OdooTimeout    time.Duration `envconfig:"ODOO_TIMEOUT" default:"10s"`
	// OdooConcurrency bounds the pushes in flight to Odoo.
	OdooConcurrency int `envconfig:"ODOO_CONCURRENCY" default:"4"`
	// OdooReconcileInterval is how often the engine asks Odoo for final
	// orders it never received (0: never); OdooReconcileOverlap how far
	// back each pass looks again (longer than Odoo's longest transaction,
	// within DUPLICATE_WINDOW); OdooReadbackMaxWait how long a recorded
	// order Odoo does not show is waited for before it is dead-lettered.
	OdooReconcileInterval time.Duration `envconfig:"ODOO_RECONCILE_INTERVAL" default:"1m"`
	OdooReconcileOverlap  time.Duration `envconfig:"ODOO_RECONCILE_OVERLAP" default:"5m"`
	OdooReadbackMaxWait   time.Duration `envconfig:"ODOO_READBACK_MAX_WAIT" default:"1h"`

	// Mode towards Odoo (docs/MIGRATION.md): live pushes results to Odoo;
	// shadow pushes nothing and compares each result with what Odoo's own
	// loyalty gave the order. MODE_COMPANIES and MODE_POS_CONFIGS
	// ("3:shadow,4:live") set it per Odoo company and POS config. In
	// shadow, a result is compared SHADOW_SETTLE after it was produced
	// (Odoo's POS confirms its loyalty after the order); SHADOW_POINTS_PROGRAM
	// is the Odoo loyalty program the catalog's points stand for (0: the
	// one the order shows).
	Mode                string        `envconfig:"MODE" default:"live"`
	ModeCompanies       string        `envconfig:"MODE_COMPANIES"`
	ModePOSConfigs      string        `envconfig:"MODE_POS_CONFIGS"`
	ShadowSettle        time.Duration `envconfig:"SHADOW_SETTLE" default:"1m"`
	ShadowPointsProgram int64         `envconfig:"SHADOW_POINTS_PROGRAM" default:"0"`

	// APIKeys is "key:role,key:role" with role pos, admin or webhook.
	APIKeys APIKeys `envconfig:"API_KEYS"`

	Workers   string `envconfig:"WORKERS" default:"orders,outbox,odoo,jobs,api"`
	BatchSize int    `envconfig:"BATCH_SIZE" default:"256"`
	// Lanes is the number of per-customer serial lanes of the order worker
	// (0: as many as Transactions).
	Lanes int `envconfig:"LANES" default:"0"`
	// Transactions is the most order-worker transactions running at once
	// (0: the number of CPUs, at least 2). Under load, fewer concurrent
	// transactions carry larger batches, which costs PostgreSQL less.
	Transactions int `envconfig:"TRANSACTIONS" default:"0"`
	// MaxDeliver is how many times an order event is tried before it is
	// dead-lettered (a return waiting for its original order, a failing
	// database).
	MaxDeliver int `envconfig:"MAX_DELIVER" default:"10"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"json"`

	// SubjectPrefix puts every subject and stream under a prefix (SPEC §2:
	// "the prefix is configurable"); empty gives the SPEC's names.
	SubjectPrefix string `envconfig:"SUBJECT_PREFIX"`
	// PProf serves Go's profiler under /debug/pprof/ on PProfAddr, for
	// diagnosing a slow or hungry process in place.
	PProf bool `envconfig:"PPROF" default:"false"`
	// PProfAddr is the profiler's own listener, never the API's: profiles
	// show memory contents and cost CPU, so they are reached from the host
	// (or through a port-forward) and not from the network the tills use.
	PProfAddr string `envconfig:"PPROF_ADDR" default:"127.0.0.1:6060"`

	// DuplicateWindow is the JetStream de-duplication window of the streams.
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"10m"`

	// Partitions is how many partitions POS_ORDERS spreads customers over:
	// the unit of parallelism between processes, chosen once (docs/DEPLOY.md).
	Partitions int `envconfig:"PARTITIONS" default:"16"`
	// AckWait is how long a message held by a process that died waits
	// before another process gets it (held messages are kept alive).
	AckWait time.Duration `envconfig:"ACK_WAIT" default:"5s"`
	// NodeID names this process among the engine's processes ("" picks
	// host-pid-random at each start).
	NodeID string `envconfig:"NODE_ID"`
	// StreamReplicas is the replication of every stream and bucket: 3 on a
	// three-server NATS cluster.
	StreamReplicas int `envconfig:"STREAM_REPLICAS" default:"1"`
	// DatabaseReplicaURL, when set, serves the reads that need not be
	// current (customer views, quotes, status) from a streaming replica.
	DatabaseReplicaURL string `envconfig:"DATABASE_REPLICA_URL"`
	// Security (docs/SECURITY.md). OpenID Connect bearer tokens beside the
	// API keys (SPEC §8): the issuer URL exactly as in the tokens' iss, the
	// audience they must carry, the claim holding the roles.
	OIDCIssuer     string `envconfig:"OIDC_ISSUER"`
	OIDCAudience   string `envconfig:"OIDC_AUDIENCE"`
	OIDCRolesClaim string `envconfig:"OIDC_ROLES_CLAIM" default:"roles"`
	// TLSCertFile and TLSKeyFile (PEM) make the HTTP listener HTTPS; both
	// files are read again when they change.
	TLSCertFile string `envconfig:"TLS_CERT_FILE"`
	TLSKeyFile  string `envconfig:"TLS_KEY_FILE"`
	// NATS: the CA that signs the server's certificate (PEM), a client
	// certificate and key for servers that verify clients, and an NKey seed
	// file (PROMO_NATS_CREDS covers JWT credentials).
	NATSCAFile   string `envconfig:"NATS_CA_FILE"`
	NATSCertFile string `envconfig:"NATS_CERT_FILE"`
	NATSKeyFile  string `envconfig:"NATS_KEY_FILE"`
	NATSNKeyFile string `envconfig:"NATS_NKEY_FILE"`
	// CouponSecret is the key issued coupon codes are derived with (SPEC
	// §6.10, §9): required once a catalog issues coupons, the same in every
	// process of a chain (a replay with another issues other codes).
	CouponSecret Secret `envconfig:"COUPON_SECRET"`
}

// MinCouponSecret is the shortest PROMO_COUPON_SECRET accepted: codes are
// only as unguessable as the secret.
const MinCouponSecret = 16

// Secret is a string that never prints.
type Secret string

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// MarshalText masks the value too, so a Secret inside a struct logged or
// encoded as JSON never shows.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString masks %#v.
func (s Secret) GoString() string { return s.String() }

// APIKey is one bearer key, its role and the stores it may act for.
type APIKey struct {
	Key  Secret
	Role string
	// Scope is the store scope after "@" (identity.ParseScope); zero: every
	// store.
	Scope identity.Scope
}

// APIKeys is the parsed PROMO_API_KEYS.
type APIKeys []APIKey

// Decode implements envconfig.Decoder.
func (k *APIKeys) Decode(value string) error {
	var out APIKeys
	for i, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		// The messages never quote the item: it holds a key (and a
		// mistyped separator can put the next key in the "role").
		key, role, ok := strings.Cut(item, ":")
		if !ok || key == "" {
			return fmt.Errorf("item %d is not key:role", i+1)
		}
		role, scopeText, scoped := strings.Cut(role, "@")
		if role != RolePOS && role != RoleAdmin && role != RoleWebhook {
			return fmt.Errorf("item %d has an unknown role; want %q, %q or %q", i+1, RolePOS, RoleAdmin, RoleWebhook)
		}
		apiKey := APIKey{Key: Secret(key), Role: role}
		if scoped {
			scope, err := identity.ParseScope(scopeText)
			if err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
			apiKey.Scope = scope
		}
		out = append(out, apiKey)
	}
	*k = out
	return nil
}

// Variables lists every environment variable the engine reads, in the
// order of Config's fields.
func Variables() []string {
	t := reflect.TypeFor[Config]()
	vars := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("envconfig"); tag != "" {
			vars = append(vars, Prefix+"_"+tag)
		}
	}
	return vars
}

// Load reads and validates the environment.
func Load() (*Config, error) {
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		return nil, fmt.Errorf("config: %w", valueFree(err))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// valueFree replaces envconfig's parse errors, which quote the whole value
// ("converting 'k1:pos,…' to type config.APIKeys"), by ones that name the
// variable and what it should hold. Our own decoders' messages are kept:
// they never quote a value.
func valueFree(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	if _, own := reflect.PointerTo(fieldType(pe.FieldName)).MethodByName("Decode"); own {
		return fmt.Errorf("%s: %s (the value is not shown)", pe.KeyName, pe.Err.Error())
	}
	want := "a valid " + pe.TypeName
	switch pe.TypeName {
	case "int", "int32", "int64":
		want = "an integer"
	case "bool":
		want = "true or false"
	case "Duration":
		want = "a duration such as 10s or 2m"
	}
	return fmt.Errorf("%s: must be %s (the value is not shown)", pe.KeyName, want)
}

func fieldType(name string) reflect.Type {
	if f, ok := reflect.TypeFor[Config]().FieldByName(name); ok {
		return f.Type
	}
	return reflect.TypeFor[string]()
}

// Validate checks every value and reports all problems at once. A message
// names the variable and never echoes a value it was given, except numbers
// and durations the engine has parsed: a value may be a secret pasted into
// the wrong variable, and a URL carries credentials (shown masked only).
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("PROMO_%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, err := c.WorkerList(); err != nil {
		bad("WORKERS", "must name some of %s, and nothing else", strings.Join(AllWorkers, ","))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		bad("BATCH_SIZE", "must be between 1 and 10000, got %d", c.BatchSize)
	}
	if c.Lanes < 0 || c.Lanes > 256 {
		bad("LANES", "must be between 0 (as many as transactions) and 256, got %d", c.Lanes)
	}
	if c.Transactions < 0 || c.Transactions > 256 {
		bad("TRANSACTIONS", "must be between 0 (the number of CPUs) and 256, got %d", c.Transactions)
	}
	if c.MaxDeliver < 2 || c.MaxDeliver > 100 {
		bad("MAX_DELIVER", "must be between 2 and 100, got %d", c.MaxDeliver)
	}
	if c.DatabaseMaxConns < 0 {
		bad("DATABASE_MAX_CONNS", "must not be negative, got %d", c.DatabaseMaxConns)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be one of trace, debug, info, warn, error")
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("LOG_FORMAT", "must be json or console")
	}
	if c.NATSURL == "" {
		bad("NATS_URL", "must not be empty")
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql" && !strings.Contains(c.DatabaseURL, "=")) {
			bad("DATABASE_URL", "must be a postgres:// URL or a key=value connection string")
		}
	}
	if c.OdooURL != "" {
		u, err := url.Parse(c.OdooURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("ODOO_URL", "must be an http(s) URL such as https://odoo.example.com, got %s", MaskURL(c.OdooURL))
		}
		if c.OdooDB == "" {
			bad("ODOO_DB", "is required when PROMO_ODOO_URL is set")
		}
		if c.OdooLogin == "" {
			bad("ODOO_LOGIN", "is required when PROMO_ODOO_URL is set")
		}
		if c.OdooAPIKey == "" && c.OdooAPIKeyFile == "" {
			bad("ODOO_API_KEY", "or PROMO_ODOO_API_KEY_FILE is required when PROMO_ODOO_URL is set")
		}
	}
	if c.OdooAPIKey != "" && c.OdooAPIKeyFile != "" {
		bad("ODOO_API_KEY_FILE", "set either PROMO_ODOO_API_KEY or PROMO_ODOO_API_KEY_FILE, not both")
	}
	if c.OdooAPIKeyFile != "" {
		b, err := os.ReadFile(c.OdooAPIKeyFile)
		if err != nil {
			bad("ODOO_API_KEY_FILE", "cannot read the file: %v", errors.Unwrap(err))
		} else {
			c.OdooAPIKey = Secret(strings.TrimSpace(string(b)))
		}
	}
	if c.OdooConcurrency < 1 || c.OdooConcurrency > 64 {
		bad("ODOO_CONCURRENCY", "must be between 1 and 64, got %d", c.OdooConcurrency)
	}
	if c.OdooTimeout <= 0 {
		bad("ODOO_TIMEOUT", "must be positive, got %s", c.OdooTimeout)
	}
	if c.OdooReconcileInterval < 0 {
		bad("ODOO_RECONCILE_INTERVAL", "must not be negative (0 turns the reconciler off), got %s", c.OdooReconcileInterval)
	}
	if c.OdooReconcileOverlap < time.Minute || c.OdooReconcileOverlap > c.DuplicateWindow {
		bad("ODOO_RECONCILE_OVERLAP", "must be between 1m and PROMO_DUPLICATE_WINDOW (%s), got %s", c.DuplicateWindow, c.OdooReconcileOverlap)
	}
	if c.OdooReadbackMaxWait < time.Minute {
		bad("ODOO_READBACK_MAX_WAIT", "must be at least 1m, got %s", c.OdooReadbackMaxWait)
	}
	if c.DuplicateWindow < 2*time.Minute {
		bad("DUPLICATE_WINDOW", "must be at least 2m so that republished events are recognised, got %s", c.DuplicateWindow)
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		bad("PARTITIONS", "must be between 1 and 1024, got %d", c.Partitions)
	}
	if c.AckWait < time.Second || c.AckWait > 5*time.Minute {
		bad("ACK_WAIT", "must be between 1s and 5m, got %s", c.AckWait)
	}
	if c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5 {
		bad("STREAM_REPLICAS", "must be 1, 3 or 5, got %d", c.StreamReplicas)
	}
	if strings.ContainsAny(c.NodeID, ".*> \t") {
		bad("NODE_ID", "must not contain dots, spaces, '*' or '>'")
	}
	if c.DatabaseReplicaURL != "" {
		if u, err := url.Parse(c.DatabaseReplicaURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql" && !strings.Contains(c.DatabaseReplicaURL, "=")) {
			bad("DATABASE_REPLICA_URL", "must be a postgres:// URL or a key=value connection string")
		}
	}
	if modes, err := c.Modes(); err != nil {
		errs = append(errs, err)
	} else if modes.AnyShadow() && c.OdooURL == "" {
		bad("MODE", "shadow compares with Odoo: set PROMO_ODOO_URL and the other PROMO_ODOO_* variables")
	}
	if c.ShadowSettle < 0 {
		bad("SHADOW_SETTLE", "must not be negative, got %s", c.ShadowSettle)
	}
	errs = append(errs, c.validateSecurity()...)
	if c.CouponSecret != "" && len(c.CouponSecret) < MinCouponSecret {
		bad("COUPON_SECRET", "must be at least %d characters (a random secret such as `openssl rand -base64 32` gives), got %d", MinCouponSecret, len(c.CouponSecret))
	}
	seen := map[Secret]bool{}
	for _, k := range c.APIKeys {
		if seen[k.Key] {
			bad("API_KEYS", "a key is listed twice")
		}
		seen[k.Key] = true
	}
	return errors.Join(errs...)
}

// WorkerList parses Workers.
func (c *Config) WorkerList() ([]string, error) {
	return ParseWorkers(c.Workers)
}

// ParseWorkers parses "orders,outbox" into a list, refusing unknown names.
func ParseWorkers(s string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if !slices.Contains(AllWorkers, w) {
			return nil, fmt.Errorf("unknown worker %q; want some of %s", w, strings.Join(AllWorkers, ","))
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no worker named; want some of %s", strings.Join(AllWorkers, ","))
	}
	return out, nil
}

// MaskedDatabaseURL is the database URL or key=value string with every
// credential hidden (MaskURL), for logs.
func (c *Config) MaskedDatabaseURL() string { return MaskURL(c.DatabaseURL) }

// LogFields renders the configuration for the start-up log line with every
// secret masked (the Odoo API key and the API keys show a short fingerprint
// so an operator can tell which key is loaded without seeing it).
func (c *Config) LogFields() map[string]any {
	roles := make([]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		roles[i] = fingerprint(string(k.Key)) + ":" + k.Role
		if !k.Scope.Unlimited() {
			roles[i] += "@" + k.Scope.String()
		}
	}
	return map[string]any{
		"nats_url":         MaskURL(c.NATSURL),
		"nats_creds":       c.NATSCreds,
		"database_url":     c.MaskedDatabaseURL(),
		"http_addr":        c.HTTPAddr,
		"odoo_url":         MaskURL(c.OdooURL),
		"odoo_db":          c.OdooDB,
		"odoo_login":       c.OdooLogin,
		"odoo_api_key":     fingerprint(string(c.OdooAPIKey)),
		"odoo_model":       c.OdooModel,
		"odoo_method":      c.OdooMethod,
		"mode":             c.Mode,
		"mode_companies":   c.ModeCompanies,
		"mode_pos_configs": c.ModePOSConfigs,
		"api_keys":         roles,
		"workers":          c.Workers,
		"batch_size":       c.BatchSize,
		"lanes":            c.Lanes,
		"transactions":     c.Transactions,
		"max_deliver":      c.MaxDeliver,
		"subject_prefix":   c.SubjectPrefix,
		"duplicate_window": c.DuplicateWindow.String(),
		"partitions":       c.Partitions,
		"ack_wait":         c.AckWait.String(),
		"node_id":          c.NodeID,
		"stream_replicas":  c.StreamReplicas,
		"database_replica": MaskURL(c.DatabaseReplicaURL),
		"oidc_issuer":      c.OIDCIssuer,
		"oidc_audience":    c.OIDCAudience,
		"tls_cert_file":    c.TLSCertFile,
		"nats_ca_file":     c.NATSCAFile,
		"nats_cert_file":   c.NATSCertFile,
		"nats_nkey_file":   c.NATSNKeyFile,
		"pprof":            c.PProf,
		"pprof_addr":       c.PProfAddr,
		"coupon_secret":    fingerprint(string(c.CouponSecret)),
	}
}

func fingerprint(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("sha256:%x…", sum[:4])
}
