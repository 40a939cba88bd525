package odoo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/tracing"
)

// Config says where and as whom to call Odoo.
type Config struct {
	// URL is Odoo's base URL, e.g. https://odoo.example.com; calls go to
	// URL + "/jsonrpc".
	URL   string
	DB    string
	Login string
	// APIKey is created in Odoo under Settings → Users → (the user) →
	// Account Security → New API Key. It stands in for the password.
	APIKey config.Secret
	// Timeout bounds each HTTP call, connection to last byte; 0 means 10 s.
	Timeout time.Duration
	// HTTPClient replaces the default client (a proxy, custom TLS). Its own
	// Timeout is left as it is.
	HTTPClient *http.Client
	Log        zerolog.Logger
}

// Client is a JSON-RPC client of one Odoo database as one user. It is safe
// for concurrent use; the uid is shared by all callers.
type Client struct {
	endpoint string
	db       string
	login    string
	apiKey   string
	http     *http.Client
	log      zerolog.Logger
	nextID   atomic.Int64

	authMu sync.Mutex // one authenticate at a time; the others wait for its uid
	uid    atomic.Int64
}

// maxResponseBytes bounds what one answer may hold: a search_read of a few
// thousand order lines is a few megabytes.
const maxResponseBytes = 64 << 20

// New checks cfg and returns a client. It does not contact Odoo: the first
// call authenticates.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("odoo: URL must be http(s)://host[:port][/path], got %q", cfg.URL)
	}
	if cfg.DB == "" || cfg.Login == "" || cfg.APIKey == "" {
		return nil, errors.New("odoo: database, login and API key are required")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		// A JSON-RPC call is a CLIENT span while tracing is on (otelhttp).
		hc = &http.Client{Timeout: timeout, Transport: tracing.HTTPTransport(nil)}
	}
	return &Client{
		endpoint: strings.TrimRight(cfg.URL, "/") + "/jsonrpc",
		db:       cfg.DB,
		login:    cfg.Login,
		apiKey:   string(cfg.APIKey),
		http:     hc,
		log:      cfg.Log.With().Str("component", "odoo").Logger(),
	}, nil
}

// NewFromConfig builds the client from the engine's configuration, or
// returns nil without error when PROMO_ODOO_URL is not set (SPEC §7:
// pushing is optional).
func NewFromConfig(c *config.Config, log zerolog.Logger) (*Client, error) {
	if c.OdooURL == "" {
		return nil, nil
	}
	return New(Config{URL: c.OdooURL, DB: c.OdooDB, Login: c.OdooLogin, APIKey: c.OdooAPIKey,
		Timeout: c.OdooTimeout, Log: log})
}

// DB is the Odoo database name the client calls.
func (c *Client) DB() string { return c.db }

// Authenticate calls common.authenticate and caches the uid. A refused
// login gives an error matching ErrAccessDenied.
func (c *Client) Authenticate(ctx context.Context) (int64, error) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return c.authenticateLocked(ctx)
}

func (c *Client) authenticateLocked(ctx context.Context) (int64, error) {
	raw, err := c.call(ctx, "common.authenticate", "common", "authenticate",
		[]any{c.db, c.login, c.apiKey, map[string]any{}})
	if err != nil {
		return 0, err
	}
	var uid int64
	if err := json.Unmarshal(raw, &uid); err != nil || uid <= 0 {
		// Odoo answers false for a wrong login or key.
		return 0, fmt.Errorf("%w: common.authenticate refused login %q on database %q", ErrAccessDenied, c.login, c.db)
	}
	c.uid.Store(uid)
	c.log.Debug().Int64("uid", uid).Str("login", c.login).Msg("authenticated to Odoo")
	return uid, nil
}

// session returns the cached uid, authenticating first when there is none.
func (c *Client) session(ctx context.Context) (int64, error) {
	if uid := c.uid.Load(); uid > 0 {
		return uid, nil
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if uid := c.uid.Load(); uid > 0 { // another caller authenticated meanwhile
		return uid, nil
	}
	return c.authenticateLocked(ctx)
}

// renew drops a uid that was denied and authenticates again, unless another
// caller already did (then its fresh uid is used).
func (c *Client) renew(ctx context.Context, denied int64) (int64, error) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if uid := c.uid.Load(); uid > 0 && uid != denied {
		return uid, nil
	}
	c.uid.Store(0)
	return c.authenticateLocked(ctx)
}

// ExecuteKW calls object.execute_kw(db, uid, key, model, method, args,
// kwargs) and returns the raw JSON result. args are the positional
// arguments (for a method on records, the first is the list of ids);
// kwargs may be nil. On an access-denied answer it authenticates again once
// and repeats the call.
func (c *Client) ExecuteKW(ctx context.Context, model, method string, args []any, kwargs map[string]any) (json.RawMessage, error) {
	if args == nil {
		args = []any{}
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	uid, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.executeKW(ctx, uid, model, method, args, kwargs)
	var oe *Error
	if errors.As(err, &oe) && oe.AccessDenied() {
		c.log.Info().Str("model", model).Str("method", method).Msg("Odoo denied access; authenticating again once")
		if uid, err = c.renew(ctx, uid); err != nil {
			return nil, err
		}
		res, err = c.executeKW(ctx, uid, model, method, args, kwargs)
	}
	return res, err
}

func (c *Client) executeKW(ctx context.Context, uid int64, model, method string, args []any, kwargs map[string]any) (json.RawMessage, error) {
	return c.call(ctx, "object.execute_kw "+model+"."+method, "object", "execute_kw",
		[]any{c.db, uid, c.apiKey, model, method, args, kwargs})
}

// SearchRead calls model.search_read(domain, fields, **kwargs) (kwargs such
// as limit, order, context) and returns the records.
func (c *Client) SearchRead(ctx context.Context, model string, domain []any, fields []string, kwargs map[string]any) ([]Record, error) {
	if domain == nil {
		domain = []any{}
	}
	kw := map[string]any{"fields": fields}
	for k, v := range kwargs {
		kw[k] = v
	}
	raw, err := c.ExecuteKW(ctx, model, "search_read", []any{domain}, kw)
	if err != nil {
		return nil, err
	}
	return decodeRecords(model, raw)
}

// Read calls model.read(ids, fields). Odoo raises MissingError when an id
// does not exist (any more).
func (c *Client) Read(ctx context.Context, model string, ids []int64, fields []string) ([]Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	raw, err := c.ExecuteKW(ctx, model, "read", []any{ids}, map[string]any{"fields": fields})
	if err != nil {
		return nil, err
	}
	return decodeRecords(model, raw)
}

func decodeRecords(model string, raw json.RawMessage) ([]Record, error) {
	var recs []Record
	if err := json.Unmarshal(raw, &recs); err != nil {
		return nil, fmt.Errorf("odoo: %s: unexpected answer, not a list of records: %w", model, err)
	}
	return recs, nil
}

type rpcRequest struct {
	JSONRPC string    `json:"jsonrpc"`
	Method  string    `json:"method"`
	Params  rpcParams `json:"params"`
	ID      int64     `json:"id"`
}

type rpcParams struct {
	Service string `json:"service"`
	Method  string `json:"method"`
	Args    []any  `json:"args"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"data"`
}

// call posts one JSON-RPC request and returns its result.
func (c *Client) call(ctx context.Context, op, service, method string, args []any) (json.RawMessage, error) {
	body, err := json.Marshal(rpcRequest{JSONRPC: "2.0", Method: "call",
		Params: rpcParams{Service: service, Method: method, Args: args}, ID: c.nextID.Add(1)})
	if err != nil {
		return nil, fmt.Errorf("odoo: %s: encode arguments: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &TransportError{Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Op: op, Err: c.scrubErr(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, &TransportError{Op: op, Err: c.scrubErr(err)}
	}
	c.log.Debug().Str("call", op).Int("status", resp.StatusCode).Dur("took", time.Since(start)).Msg("Odoo JSON-RPC call")
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body: c.scrubbedSnippet(data)}
	}
	if len(data) > maxResponseBytes {
		return nil, &TransportError{Op: op, Err: fmt.Errorf("answer larger than %d bytes", maxResponseBytes)}
	}
	var r rpcResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &TransportError{Op: op, Err: fmt.Errorf("answer is not JSON-RPC: %s", c.scrubbedSnippet(data))}
	}
	if len(r.Error) > 0 && !bytes.Equal(r.Error, []byte("null")) {
		raw := json.RawMessage(c.scrub(string(r.Error)))
		var re rpcError
		_ = json.Unmarshal(raw, &re)
		return nil, &Error{Code: re.Code, Message: re.Message, DataName: re.Data.Name, DataMessage: re.Data.Message, Raw: raw}
	}
	if r.Result == nil {
		// A method that returns None (Odoo's action_archive does) is
		// answered without a result: Odoo's JSON-RPC dispatcher leaves the
		// key out for None. Only a body that is not JSON-RPC is broken.
		var keys map[string]json.RawMessage
		if json.Unmarshal(data, &keys) == nil {
			if _, ok := keys["jsonrpc"]; ok {
				return json.RawMessage("null"), nil
			}
		}
		return nil, &TransportError{Op: op, Err: errors.New("answer has neither result nor error")}
	}
	return r.Result, nil
}

// scrub removes the API key from text that came back from the network.
func (c *Client) scrub(s string) string {
	if c.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey, "***")
}

// scrubErr keeps err's chain (errors.Is on timeouts still works) unless its
// text holds the key, which no transport error should, but a URL with
// credentials in it could.
func (c *Client) scrubErr(err error) error {
	if c.apiKey != "" && strings.Contains(err.Error(), c.apiKey) {
		return &scrubbedError{msg: c.scrub(err.Error()), err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func snippet(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
