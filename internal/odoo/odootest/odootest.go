// Package odootest is a fake Odoo for tests: a real HTTP server
// (httptest) speaking Odoo's JSON-RPC on /jsonrpc, with a small in-memory
// database, scripted faults and a log of every call.
//
// It answers the way Odoo 17/18 does: common.authenticate gives the uid or
// false; object.execute_kw checks db, uid and API key and answers
// odoo.exceptions.AccessDenied otherwise; read and search_read return
// many-to-one fields as [id, "name"], empty fields as false, and refuse a
// field the model does not have ("Invalid field"), so that a misspelt field
// in production code fails in tests as it would against a real Odoo.
// Errors have Odoo's shape: {"code": 200, "message": "Odoo Server Error",
// "data": {"name": "odoo.exceptions.…", "message": …, "debug": …}}.
//
// Faults (HTTP status codes, Retry-After, slow answers, JSON-RPC errors) are
// queued per call and consumed in order, so a test states exactly which
// attempt fails and how.
package odootest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo"
)

// Defaults of a new server.
const (
	DB     = "odoo1"
	Login  = "promo-bot"
	APIKey = "0123456789abcdef-secret-api-key"
	UID    = 7
)

// RPCError is a JSON-RPC error as Odoo writes it.
type RPCError struct {
	Name    string // e.g. odoo.exceptions.ValidationError
	Message string
	Debug   string // the traceback text; tests put the key here to check scrubbing
}

// ValidationError, UserError, MissingError and AccessDenied build Odoo's
// exceptions.
func ValidationError(msg string) *RPCError {
	return &RPCError{Name: "odoo.exceptions.ValidationError", Message: msg}
}
func UserError(msg string) *RPCError {
	return &RPCError{Name: "odoo.exceptions.UserError", Message: msg}
}
func MissingError(msg string) *RPCError {
	return &RPCError{Name: "odoo.exceptions.MissingError", Message: msg}
}
func AccessDenied() *RPCError {
	return &RPCError{Name: "odoo.exceptions.AccessDenied", Message: "Access Denied"}
}

// Fault changes one answer.
type Fault struct {
	Status     int           // HTTP status other than 200 (with a small HTML body, as a proxy sends)
	RetryAfter string        // Retry-After header with Status
	Delay      time.Duration // wait before answering (longer than the client timeout: a timeout)
	Error      *RPCError     // a JSON-RPC error instead of the result
	Result     any           // a result instead of the normal one (e.g. false for authenticate)
}

// Call is one JSON-RPC call received.
type Call struct {
	Service string // common or object
	Method  string // authenticate or execute_kw
	Model   string // for execute_kw
	Func    string // the model method, e.g. search_read
	UID     int64
	Args    []json.RawMessage // execute_kw's positional args
	Kwargs  map[string]json.RawMessage
	Body    []byte // the whole request
	At      time.Time
}

// Handler answers a model method; return a result or an error.
type Handler func(c Call) (any, *RPCError)

// Server is a running fake Odoo.
type Server struct {
	URL    string
	DB     string
	Login  string
	APIKey string
	UID    int64

	srv *httptest.Server

	mu       sync.Mutex
	records  map[string]map[int64]map[string]any
	handlers map[string]Handler
	faults   map[string][]Fault
	calls    []Call
	notify   chan struct{}
	// extra are fields of an addon installed on this server (AddField).
	extra map[string][]string
}

// New starts a fake Odoo, closed at the end of the test.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{DB: DB, Login: Login, APIKey: APIKey, UID: UID,
		records: map[string]map[int64]map[string]any{}, handlers: map[string]Handler{},
		faults: map[string][]Fault{}, notify: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Client returns an odoo.Client of this server with the given timeout.
func (s *Server) Client(t testing.TB, log zerolog.Logger, timeout time.Duration) *odoo.Client {
	t.Helper()
	// A transport of its own, closed at cleanup, so that no keep-alive
	// connection outlives the test (goleak).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := odoo.New(odoo.Config{URL: s.URL, DB: s.DB, Login: s.Login, APIKey: config.Secret(s.APIKey),
		Timeout: timeout, Log: log, HTTPClient: &http.Client{Timeout: timeout, Transport: tr}})
	require.NoError(t, err)
	return c
}

// Add stores a record (fields as read() returns them: many-to-one as
// []any{id, "name"}, empty as false).
func (s *Server) Add(model string, id int64, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(model, id, fields)
}

func (s *Server) addLocked(model string, id int64, fields map[string]any) {
	if s.records[model] == nil {
		s.records[model] = map[int64]map[string]any{}
	}
	rec := map[string]any{"id": id}
	for k, v := range fields {
		rec[k] = v
	}
	s.records[model][id] = rec
}

// Handle answers model.method with fn (for methods other than read and
// search_read, such as promo_engine_apply).
func (s *Server) Handle(model, method string, fn Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[model+"."+method] = fn
}

// Inject queues faults for the next calls matching key: "authenticate",
// "execute_kw" (any model method) or "model.method". Each call consumes one.
func (s *Server) Inject(key string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[key] = append(s.faults[key], faults...)
}

// Calls returns the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the execute_kw calls of model.method.
func (s *Server) CallsTo(model, method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Model == model && c.Func == method {
			out = append(out, c)
		}
	}
	return out
}

// Authentications counts common.authenticate calls.
func (s *Server) Authentications() int {
	n := 0
	for _, c := range s.Calls() {
		if c.Method == "authenticate" {
			n++
		}
	}
	return n
}

// Called is signalled (without blocking) after every call.
func (s *Server) Called() <-chan struct{} { return s.notify }

type request struct {
	ID     json.RawMessage `json:"id"`
	Params struct {
		Service string            `json:"service"`
		Method  string            `json:"method"`
		Args    []json.RawMessage `json:"args"`
	} `json:"params"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/jsonrpc" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	call := Call{Service: req.Params.Service, Method: req.Params.Method, Body: body, At: time.Now()}
	a := req.Params.Args
	if call.Method == "execute_kw" && len(a) >= 5 {
		_ = json.Unmarshal(a[1], &call.UID)
		_ = json.Unmarshal(a[3], &call.Model)
		_ = json.Unmarshal(a[4], &call.Func)
		if len(a) > 5 {
			_ = json.Unmarshal(a[5], &call.Args)
		}
		if len(a) > 6 {
			_ = json.Unmarshal(a[6], &call.Kwargs)
		}
	}
	fault, hasFault := s.takeFault(call)
	s.record(call)
	if hasFault {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(fault.Status)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", fault.Status, http.StatusText(fault.Status))
			return
		}
		if fault.Error != nil {
			writeError(w, req.ID, fault.Error)
			return
		}
		if fault.Result != nil {
			writeResult(w, req.ID, fault.Result)
			return
		}
	}
	result, rpcErr := s.answer(call, a)
	if rpcErr != nil {
		writeError(w, req.ID, rpcErr)
		return
	}
	writeResult(w, req.ID, result)
}

func (s *Server) takeFault(c Call) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []string{c.Method}
	if c.Method == "execute_kw" {
		keys = []string{c.Model + "." + c.Func, "execute_kw"}
	}
	for _, k := range keys {
		if q := s.faults[k]; len(q) > 0 {
			s.faults[k] = q[1:]
			return q[0], true
		}
	}
	return Fault{}, false
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Server) answer(c Call, a []json.RawMessage) (any, *RPCError) {
	str := func(i int) string {
		var v string
		if i < len(a) {
			_ = json.Unmarshal(a[i], &v)
		}
		return v
	}
	switch c.Service + "." + c.Method {
	case "common.authenticate":
		if str(0) == s.DB && str(1) == s.Login && str(2) == s.APIKey {
			return s.UID, nil
		}
		return false, nil
	case "object.execute_kw":
		if str(0) != s.DB || c.UID != s.UID || str(2) != s.APIKey {
			return nil, AccessDenied()
		}
	default:
		return nil, &RPCError{Name: "werkzeug.exceptions.NotFound", Message: "unknown service method " + c.Service + "." + c.Method}
	}
	s.mu.Lock()
	h := s.handlers[c.Model+"."+c.Func]
	s.mu.Unlock()
	if h != nil {
		return h(c)
	}
	switch c.Func {
	case "read":
		var ids []int64
		if len(c.Args) > 0 {
			_ = json.Unmarshal(c.Args[0], &ids)
		}
		return s.read(c.Model, ids, fieldsOf(c))
	case "search_read":
		var domain []any
		if len(c.Args) > 0 {
			_ = json.Unmarshal(c.Args[0], &domain)
		}
		out, err := s.searchRead(c.Model, domain, fieldsOf(c))
		if err != nil {
			return nil, err
		}
		return page(out, c.Kwargs), nil
	case "search_count":
		var domain []any
		if len(c.Args) > 0 {
			_ = json.Unmarshal(c.Args[0], &domain)
		}
		out, err := s.searchRead(c.Model, domain, nil)
		if err != nil {
			return nil, err
		}
		return len(out), nil
	}
	return nil, &RPCError{Name: "builtins.AttributeError",
		Message: fmt.Sprintf("The method '%s' does not exist on the model '%s'", c.Func, c.Model)}
}

func fieldsOf(c Call) []string {
	var fields []string
	if raw, ok := c.Kwargs["fields"]; ok {
		_ = json.Unmarshal(raw, &fields)
	}
	return fields
}

// AddField makes a field of an addon known to this server (say
// promo_engine_loyalty_points of pos.order), which read and search_read
// otherwise refuse as Odoo refuses a field no installed module defines.
func (s *Server) AddField(model, field string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.extra == nil {
		s.extra = map[string][]string{}
	}
	s.extra[model] = append(s.extra[model], field)
}

func (s *Server) checkFields(model string, fields []string) *RPCError {
	s.mu.Lock()
	extra := s.extra[model]
	s.mu.Unlock()
	var rest []string
	for _, f := range fields {
		if !slices.Contains(extra, f) {
			rest = append(rest, f)
		}
	}
	return checkFields(model, rest)
}

func (s *Server) read(model string, ids []int64, fields []string) (any, *RPCError) {
	if err := s.checkFields(model, fields); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, id := range ids {
		rec, ok := s.records[model][id]
		if !ok {
			return nil, MissingError(fmt.Sprintf("Record does not exist or has been deleted.\n(Record: %s(%d,), User: %d)", model, id, s.UID))
		}
		out = append(out, project(rec, fields))
	}
	return out, nil
}

func (s *Server) searchRead(model string, domain []any, fields []string) ([]map[string]any, *RPCError) {
	if err := s.checkFields(model, fields); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for id := range s.records[model] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []map[string]any{}
	for _, id := range ids {
		rec := s.records[model][id]
		if matches(rec, domain) {
			out = append(out, project(rec, fields))
		}
	}
	return out, nil
}

func project(rec map[string]any, fields []string) map[string]any {
	out := map[string]any{"id": rec["id"]}
	for _, f := range fields {
		v, ok := rec[f]
		if !ok {
			v = false
		}
		out[f] = v
	}
	return out
}

// page applies search_read's order ("field asc, id asc": ascending only),
// offset and limit keyword arguments.
func page(recs []map[string]any, kwargs map[string]json.RawMessage) []map[string]any {
	var order string
	var limit, offset int
	_ = json.Unmarshal(kwargs["order"], &order)
	_ = json.Unmarshal(kwargs["limit"], &limit)
	_ = json.Unmarshal(kwargs["offset"], &offset)
	if order != "" {
		var keys []string
		for _, part := range strings.Split(order, ",") {
			if f := strings.Fields(part); len(f) > 0 {
				keys = append(keys, f[0])
			}
		}
		slices.SortStableFunc(recs, func(a, b map[string]any) int {
			for _, k := range keys {
				if c := compare(a[k], b[k]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	if offset > 0 {
		recs = recs[min(offset, len(recs)):]
	}
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return recs
}

// compare orders two field values: numbers as numbers, the rest (such as
// Odoo's "YYYY-MM-DD HH:MM:SS" datetimes) as text.
func compare(a, b any) int {
	x, errX := strconv.ParseFloat(scalar(a), 64)
	y, errY := strconv.ParseFloat(scalar(b), 64)
	if errX == nil && errY == nil {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(scalar(a), scalar(b))
}

// matches evaluates a domain of [field, op, value] terms joined by AND, with
// op =, !=, in, <, <=, > or >=; a many-to-one compares its id.
func matches(rec map[string]any, domain []any) bool {
	for _, term := range domain {
		t, ok := term.([]any)
		if !ok || len(t) != 3 {
			continue
		}
		field, _ := t[0].(string)
		op, _ := t[1].(string)
		have := scalar(rec[field])
		switch op {
		case "=":
			if have != scalar(t[2]) {
				return false
			}
		case "!=":
			if have == scalar(t[2]) {
				return false
			}
		case "<", "<=", ">", ">=":
			if v, ok := rec[field]; !ok || v == nil || v == false { // NULL in SQL: no order holds
				return false
			}
			c := compare(rec[field], t[2])
			if (op == "<" && c >= 0) || (op == "<=" && c > 0) || (op == ">" && c <= 0) || (op == ">=" && c < 0) {
				return false
			}
		case "in":
			list, _ := t[2].([]any)
			found := false
			for _, v := range list {
				if have == scalar(v) {
					found = true
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

func scalar(v any) string {
	switch x := v.(type) {
	case []any:
		if len(x) > 0 {
			return scalar(x[0])
		}
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// knownFields are the fields of the standard models in Odoo 17/18 that
// the engine may read; a read of any other field of these models fails as
// Odoo fails on a field that does not exist.
var knownFields = map[string][]string{
	"pos.order": {"name", "state", "date_order", "partner_id", "company_id", "config_id", "session_id", "write_date", "create_date",
		"currency_id", "lines", "amount_total", "amount_paid", "pos_reference", "refunded_order_ids",
		"refund_orders_count", "is_refunded", "user_id", "pricelist_id", "fiscal_position_id"},
	"pos.order.line": {"order_id", "product_id", "qty", "price_unit", "discount", "refunded_orderline_id",
		"refund_orderline_ids", "refunded_qty", "price_subtotal", "price_subtotal_incl", "full_product_name",
		"tax_ids", "name",
		// pos_loyalty
		"is_reward_line", "reward_id", "coupon_id", "reward_identifier_code", "points_cost"},
	"product.product":  {"name", "display_name", "default_code", "categ_id", "pos_categ_ids", "product_tag_ids", "product_tmpl_id", "barcode"},
	"product.category": {"name", "complete_name", "parent_id", "parent_path"},
	"pos.session":      {"name", "config_id", "state", "user_id"},
	// loyalty and pos_loyalty (17.0), what the import and the shadow
	// comparison read.
	"loyalty.program": {"name", "active", "program_type", "sequence", "company_id", "currency_id", "pricelist_ids",
		"date_from", "date_to", "limit_usage", "max_usage", "applies_on", "trigger", "rule_ids", "reward_ids", "pos_ok",
		"pos_config_ids", "portal_point_name", "total_order_count", "pos_order_count", "coupon_ids", "is_nominative"},
	"loyalty.rule": {"program_id", "active", "product_ids", "product_category_id", "product_tag_id", "product_domain",
		"reward_point_amount", "reward_point_split", "reward_point_mode", "minimum_qty", "minimum_amount",
		"minimum_amount_tax_mode", "mode", "code", "program_type", "company_id", "currency_id", "promo_barcode"},
	"loyalty.reward": {"program_id", "active", "description", "reward_type", "discount", "discount_mode",
		"discount_applicability", "discount_product_ids", "discount_product_category_id", "discount_product_tag_id",
		"discount_product_domain", "discount_max_amount", "reward_product_id", "reward_product_tag_id",
		"reward_product_qty", "required_points", "clear_wallet", "discount_line_product_id", "program_type"},
	"loyalty.card": {"program_id", "partner_id", "code", "points", "expiration_date", "program_type", "company_id",
		"source_pos_order_id", "use_count"},
}

func checkFields(model string, fields []string) *RPCError {
	known, ok := knownFields[model]
	if !ok {
		return nil
	}
	for _, f := range fields {
		if f != "id" && !slices.Contains(known, f) {
			return &RPCError{Name: "builtins.ValueError", Message: fmt.Sprintf("Invalid field '%s' on model '%s'", f, model)}
		}
	}
	return nil
}

// None is what a handler returns for a method that returns Python's None:
// Odoo's JSON-RPC answer then has no result key at all.
var None = noneResult{}

type noneResult struct{}

func writeResult(w http.ResponseWriter, id json.RawMessage, result any) {
	w.Header().Set("Content-Type", "application/json")
	answer := map[string]any{"jsonrpc": "2.0", "id": id, "result": result}
	if result == None {
		delete(answer, "result")
	}
	_ = json.NewEncoder(w).Encode(answer)
}

func writeError(w http.ResponseWriter, id json.RawMessage, e *RPCError) {
	debug := e.Debug
	if debug == "" {
		debug = "Traceback (most recent call last):\n  File \"odoo/http.py\", line 1, in _serve_db\n" + e.Name + ": " + e.Message
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{
		"code": 200, "message": "Odoo Server Error",
		"data": map[string]any{"name": e.Name, "debug": debug, "message": e.Message,
			"arguments": []string{e.Message}, "context": map[string]any{}},
	}})
}

// WaitCalls waits until f holds for the calls received, or fails the test
// after timeout. It wakes on every call instead of sleeping.
func (s *Server) WaitCalls(t testing.TB, timeout time.Duration, f func([]Call) bool) []Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		calls := s.Calls()
		if f(calls) {
			return calls
		}
		select {
		case <-ctx.Done():
			t.Fatalf("odootest: condition on calls not met after %s; %d calls received", timeout, len(calls))
			return nil
		case <-s.notify:
		case <-tick.C:
		}
	}
}

// POS fixture ids of SeedPOS.
const (
	PaidOrderID   = 1042 // Shop/0042: two goods lines and an Odoo discount line, customer 77
	RefundOrderID = 1043 // Shop/0043: gives back one unit of line 1 of order 1042
	DraftOrderID  = 1044 // still being rung up
)

// SeedPOS fills the server with a small shop, as Odoo 17 stores it:
// company 1, POS config 3 (session 9), currency IDR, customer 77; product
// 501 (category 12 "All / Drinks / Soda", POS category 4, tag 8) and 502
// (category 1, no POS category, no tag); a paid order 1042 dated
// 2026-11-28 03:15:00 UTC with line 1 (2 × 501 at 25000), line 2 (1 × 502
// at 10000 with a 10 % till discount) and line 3 (Odoo's discount product
// 999 at -5000); the refund 1043 of one unit of line 1; a draft order 1044.
func SeedPOS(s *Server) {
	s.Add("res.currency", 12, map[string]any{"name": "IDR"})
	s.Add("res.partner", 77, map[string]any{"name": "Ann"})
	s.Add("pos.session", 9, map[string]any{"name": "POS/00009", "config_id": []any{3, "Shop"}})
	s.Add("product.category", 1, map[string]any{"name": "All", "parent_id": false, "parent_path": "1/"})
	s.Add("product.category", 5, map[string]any{"name": "Drinks", "parent_id": []any{1, "All"}, "parent_path": "1/5/"})
	s.Add("product.category", 12, map[string]any{"name": "Soda", "parent_id": []any{5, "All / Drinks"}, "parent_path": "1/5/12/"})
	s.Add("product.product", 501, map[string]any{"name": "Cola", "categ_id": []any{12, "All / Drinks / Soda"},
		"pos_categ_ids": []any{4}, "product_tag_ids": []any{8}})
	s.Add("product.product", 502, map[string]any{"name": "Chips", "categ_id": []any{1, "All"},
		"pos_categ_ids": []any{}, "product_tag_ids": []any{}})
	s.Add("product.product", 999, map[string]any{"name": "Discount", "categ_id": []any{1, "All"},
		"pos_categ_ids": []any{}, "product_tag_ids": []any{}})

	order := func(id int64, name, state string, partner any, lines []any) map[string]any {
		return map[string]any{"name": name, "state": state, "date_order": "2026-11-28 03:15:00",
			"partner_id": partner, "company_id": []any{1, "My Shop Ltd"}, "config_id": []any{3, "Shop"},
			"session_id": []any{9, "POS/00009"}, "currency_id": []any{12, "IDR"}, "lines": lines}
	}
	line := func(order int64, orderName string, product int64, productName string, qty, price, discount float64, refunded any) map[string]any {
		return map[string]any{"order_id": []any{order, orderName}, "product_id": []any{product, productName},
			"qty": qty, "price_unit": price, "discount": discount, "refunded_orderline_id": refunded}
	}
	s.Add("pos.order", PaidOrderID, order(PaidOrderID, "Shop/0042", "paid", []any{77, "Ann"}, []any{1, 2, 3}))
	s.Add("pos.order.line", 1, line(PaidOrderID, "Shop/0042", 501, "Cola", 2.0, 25000.0, 0.0, false))
	s.Add("pos.order.line", 2, line(PaidOrderID, "Shop/0042", 502, "Chips", 1.0, 10000.0, 10.0, false))
	s.Add("pos.order.line", 3, line(PaidOrderID, "Shop/0042", 999, "Discount", 1.0, -5000.0, 0.0, false))

	refund := order(RefundOrderID, "Shop/0043", "paid", []any{77, "Ann"}, []any{4})
	refund["date_order"] = "2026-11-29 08:00:00"
	s.Add("pos.order", RefundOrderID, refund)
	s.Add("pos.order.line", 4, line(RefundOrderID, "Shop/0043", 501, "Cola", -1.0, 25000.0, 0.0, []any{1, "Cola"}))

	s.Add("pos.order", DraftOrderID, order(DraftOrderID, "Shop/0044", "draft", false, []any{}))
}
