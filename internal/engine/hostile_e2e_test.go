package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testhostile"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// The budget of the hostile corpus, in the engine process (the real
// binary, without the race detector):
//
//   - CPU time (user + system, /proc/<pid>/stat) of each item, from the
//     first request to the last answer, including the ordinary event sent
//     after it: at most the item's budget, testhostile.DefaultCPU (0.5 s)
//     unless the item says otherwise. Before issue 14 single items cost 2 to
//     25 s, some minutes.
//   - Memory: the peak resident set (VmHWM) may grow by at most
//     hostileRSSBudget over the resident set after start, across the whole
//     corpus. Before, one item grew it by 1.1 GB, another by 5.9 GB.
//
// Both are generous for a loaded 2-core machine: the measured figures are
// one to two orders of magnitude lower (see docs/DESIGN.md, "Hostile
// input").
const hostileRSSBudget = 400 << 20

const hostileCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["12"]}}, reward: {percent: "10"}}
`

// Secrets the engine is given; none may appear in its log or answers.
const (
	hostilePOSKey   = "pos-s3cret-key-7c1d"
	hostileAdminKey = "admin-s3cret-key-9e4b"
	hostileOdooKey  = "odoo-s3cret-api-key-2f8a"
	hostileNATSPass = "nats-s3cret-pass"
	hostileDBPass   = "db-s3cret-pass"
	hostileOdooPass = "odoo-url-s3cret-pass"
)

// TestHostileCorpus sends every item of testdata/hostile through the HTTP
// API and through NATS to the real engine, and checks the answer class
// (400/413/422 with the right code; a dead letter invalid_event with the
// original bytes; a quote error 400), that an ordinary event published
// right after each hostile one is processed (nothing stalled), the CPU and
// memory budget above, and that no secret given to the engine leaves it.
func TestHostileCorpus(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h := startHostileEngine(t)
	items := testhostile.Load(t, strconv.FormatInt(time.Now().UnixNano(), 36))

	h.checkPProf(t)
	baseRSS, _ := h.memory(t)
	t.Logf("%-28s %9s %9s  %s", "item", "cpu", "peak+", "answers")
	for _, it := range items {
		cpu0 := h.cpu(t)
		_, hwm0 := h.memory(t)
		answers := h.send(ctx, t, it)
		// Nothing stalled: an ordinary event published right after the
		// hostile one is processed.
		h.ordinaryEvent(ctx, t, it.Name)
		used := h.cpu(t) - cpu0
		_, hwm := h.memory(t)
		t.Logf("%-28s %9s %7dMB  %s", it.Name, used, (hwm-hwm0)>>20, strings.Join(answers, " "))
		if used > it.CPU {
			t.Errorf("%s cost %s of CPU, over its budget of %s", it.Name, used, it.CPU)
		}
	}
	_, hwm := h.memory(t)
	t.Logf("peak RSS %d MB, %d MB over the %d MB after start (budget %d MB)", hwm>>20, (hwm-baseRSS)>>20, baseRSS>>20, hostileRSSBudget>>20)
	if hwm-baseRSS > hostileRSSBudget {
		t.Errorf("the peak RSS grew by %d MB, over the budget of %d MB", (hwm-baseRSS)>>20, hostileRSSBudget>>20)
	}
	h.checkNoSecret(t)
}

type hostileEngine struct {
	proc      *testbin.Proc
	nc        *nats.Conn
	subjects  events.Subjects
	pprofAddr string
	secrets   []string
	ordinary  int

	mu      sync.Mutex
	results map[string]*nats.Msg // by causation id
	dlq     map[uint64]*nats.Msg // by original stream sequence
	changed chan struct{}
}

func startHostileEngine(t *testing.T) *hostileEngine {
	t.Helper()
	ns := testnats.New(t)
	dbURL := testdb.NewDatabase(t)
	h := &hostileEngine{subjects: events.NewSubjects(""), results: map[string]*nats.Msg{}, dlq: map[uint64]*nats.Msg{},
		changed: make(chan struct{}, 1), pprofAddr: freeLocalAddr(t),
		secrets: []string{hostilePOSKey, hostileAdminKey, hostileOdooKey, hostileNATSPass, hostileOdooPass}}

	// Credentials in every URL: the test servers do not ask for them (no
	// NATS auth, trust auth in PostgreSQL), and the engine must not print
	// them.
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	if pw, ok := u.User.Password(); ok {
		h.secrets = append(h.secrets, pw)
	} else {
		q := u.Query()
		q.Set("password", hostileDBPass)
		u.RawQuery = q.Encode()
		h.secrets = append(h.secrets, hostileDBPass)
	}
	natsURL := strings.Replace(ns.URL(), "nats://", "nats://promo:"+hostileNATSPass+"@", 1)
	env := testbin.Env{
		"PROMO_NATS_URL": natsURL, "PROMO_DATABASE_URL": u.String(),
		"PROMO_API_KEYS": hostilePOSKey + ":pos," + hostileAdminKey + ":admin",
		"PROMO_ODOO_URL": "https://promo:" + hostileOdooPass + "@odoo.invalid", "PROMO_ODOO_DB": "odoo",
		"PROMO_ODOO_LOGIN": "promo", "PROMO_ODOO_API_KEY": hostileOdooKey,
		"PROMO_PPROF": "true", "PROMO_PPROF_ADDR": h.pprofAddr, "PROMO_LOG_LEVEL": "debug",
		"PROMO_LANES": "2",
	}
	catFile := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catFile, []byte(hostileCatalog), 0o600))
	res := testbin.Run(t, env, "catalog", "apply", "-f", catFile)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	for _, s := range h.secrets {
		require.NotContains(t, res.Stdout+res.Stderr, s)
	}
	h.proc = testbin.Start(t, env, "run", "--workers", "orders,outbox,jobs,api")

	h.nc = ns.Conn(t)
	collect := func(m *nats.Msg) {
		h.mu.Lock()
		if strings.HasPrefix(m.Subject, "promo.dlq.") {
			seq, _ := strconv.ParseUint(m.Header.Get(events.HeaderOriginalSeq), 10, 64)
			h.dlq[seq] = m
		} else {
			var r struct {
				CausationID string `json:"causation_id"`
			}
			_ = json.Unmarshal(m.Data, &r)
			h.results[r.CausationID] = m
		}
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
	for _, subject := range []string{h.subjects.ResultsOrder(), h.subjects.DLQAll()} {
		sub, err := h.nc.Subscribe(subject, collect)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	require.NoError(t, h.nc.Flush())
	return h
}

func freeLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// checkPProf: not on the API's port, without or with a key; on its own
// listener.
func (h *hostileEngine) checkPProf(t *testing.T) {
	t.Helper()
	for _, key := range []string{"", hostilePOSKey, hostileAdminKey} {
		req, err := http.NewRequest(http.MethodGet, "http://"+h.proc.HTTPAddr+"/debug/pprof/", nil)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "the API port serves no profiler")
		require.NotContains(t, string(body), "goroutine")
	}
	resp, err := http.Get("http://" + h.pprofAddr + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the profiler is on PROMO_PPROF_ADDR")
}

// cpu is the engine's CPU time so far (user + system).
func (h *hostileEngine) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.proc.Pid()))
	require.NoError(t, err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// memory is the engine's resident set and its peak so far, in bytes.
func (h *hostileEngine) memory(t *testing.T) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.proc.Pid()))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

type answer struct {
	status int
	body   []byte
}

func (h *hostileEngine) http(ctx context.Context, t *testing.T, method, path, key string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+h.proc.HTTPAddr+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %.60s: %v", method, path, err)
		return answer{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 && len(b) > 64<<10 {
		t.Errorf("%s %.60s answered an error of %d bytes: an error is bounded", method, path, len(b))
	}
	return answer{status: resp.StatusCode, body: b}
}

// expectHTTP checks the class of an answer and returns a short summary.
func expectHTTP(t *testing.T, name, what string, a answer, status int, code string) string {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: %s answered %d, want %d: %.300s", name, what, a.status, status, a.body)
		return fmt.Sprintf("%s=%d!", what, a.status)
	}
	if code != "" {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code != code {
			t.Errorf("%s: %s answered code %q, want %q: %.300s", name, what, e.Error.Code, code, a.body)
		}
	}
	return fmt.Sprintf("%s=%d", what, a.status)
}

// send sends one item on every channel it belongs to and checks each
// answer; it returns a summary per channel.
func (h *hostileEngine) send(ctx context.Context, t *testing.T, it testhostile.Item) []string {
	t.Helper()
	var out []string
	refused := it.Expect == testhostile.Refused
	// refusal is the status and code of a refusal: the channel's usual
	// ones, or 413 body_too_large for a body over the limit.
	refusal := func(status int, code string) (int, string) {
		if it.Status == http.StatusRequestEntityTooLarge {
			return it.Status, "body_too_large"
		}
		if it.Status != 0 {
			return it.Status, code
		}
		return status, code
	}
	if it.Catalog != nil {
		a := h.http(ctx, t, http.MethodPut, "/v1/catalog", hostileAdminKey, it.Catalog)
		if refused {
			status, code := refusal(http.StatusUnprocessableEntity, "invalid_catalog")
			out = append(out, expectHTTP(t, it.Name, "catalog", a, status, code))
		} else {
			out = append(out, expectHTTP(t, it.Name, "catalog", a, http.StatusOK, ""))
			var applied struct{ Version int64 }
			if json.Unmarshal(a.body, &applied) == nil {
				h.waitCatalogInForce(ctx, t, it.Name, applied.Version)
			}
		}
	}
	if it.Customer != "" {
		a := h.http(ctx, t, http.MethodGet, "/v1/customers/"+it.Customer, hostilePOSKey, nil)
		status, code := refusal(http.StatusBadRequest, "invalid_request")
		out = append(out, expectHTTP(t, it.Name, "customer", a, status, code))
	}
	event := it.Event
	if it.Order != nil {
		event = testhostile.PaidEvent("hostile-"+it.Name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), it.Order)
		a := h.http(ctx, t, http.MethodPost, "/v1/quote", hostilePOSKey, it.Order)
		if refused {
			status, code := refusal(http.StatusBadRequest, "invalid_order")
			out = append(out, expectHTTP(t, it.Name, "quote", a, status, code))
		} else {
			out = append(out, expectHTTP(t, it.Name, "quote", a, http.StatusOK, ""))
			if bytes.Contains(a.body, []byte(`"-0`)) {
				t.Errorf("%s: a negative zero in the quote: %.300s", it.Name, a.body)
			}
		}
		if it.NATS {
			out = append(out, h.natsQuote(t, it, it.Order))
		}
	}
	if event != nil {
		a := h.http(ctx, t, http.MethodPost, "/v1/events", hostilePOSKey, event)
		if refused {
			status, code := refusal(http.StatusBadRequest, "invalid_event")
			out = append(out, expectHTTP(t, it.Name, "events", a, status, code))
		} else {
			out = append(out, expectHTTP(t, it.Name, "events", a, http.StatusAccepted, ""))
			var p struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal(a.body, &p) == nil {
				if m := h.wait(ctx, t, it.Name+" result", func() *nats.Msg { return h.results[p.EventID] }); m != nil {
					if bytes.Contains(m.Data, []byte(`"-0`)) {
						t.Errorf("%s: a negative zero in the result: %.300s", it.Name, m.Data)
					}
					out = append(out, "result")
				}
			}
		}
		if it.NATS && refused {
			out = append(out, h.natsDeadLetter(ctx, t, it, event))
		}
	}
	return out
}

// natsQuote asks promo.quote.
func (h *hostileEngine) natsQuote(t *testing.T, it testhostile.Item, order []byte) string {
	t.Helper()
	m, err := h.nc.Request(h.subjects.Quote(), order, 2*time.Minute)
	if err != nil {
		t.Errorf("%s: promo.quote: %v", it.Name, err)
		return "nats-quote=error"
	}
	code := m.Header.Get("Nats-Service-Error-Code")
	if desc := m.Header.Get("Nats-Service-Error"); len(desc) > 4000 || strings.ContainsAny(desc, "\r\n") {
		t.Errorf("%s: promo.quote error description of %d bytes: %.100q", it.Name, len(desc), desc)
	}
	switch {
	case it.Expect == testhostile.Refused && code != "400":
		t.Errorf("%s: promo.quote answered code %q, want 400: %.300s", it.Name, code, m.Data)
	case it.Expect == testhostile.Accepted && code != "":
		t.Errorf("%s: promo.quote answered code %q: %.300s", it.Name, code, m.Header.Get("Nats-Service-Error"))
	}
	if code == "" {
		code = "ok"
	}
	return "nats-quote=" + code
}

// natsDeadLetter publishes the event to its subject (raw, without a
// Nats-Msg-Id) and waits for its dead letter.
func (h *hostileEngine) natsDeadLetter(ctx context.Context, t *testing.T, it testhostile.Item, event []byte) string {
	t.Helper()
	js, err := h.nc.JetStream()
	require.NoError(t, err)
	ack, err := js.Publish(h.subjects.OrdersPaid(), event)
	if err != nil {
		t.Errorf("%s: publish: %v", it.Name, err)
		return "nats=publish-failed"
	}
	m := h.wait(ctx, t, it.Name+" dead letter", func() *nats.Msg { return h.dlq[ack.Sequence] })
	if m == nil {
		return "nats=no-dead-letter"
	}
	if code := m.Header.Get(events.HeaderErrorCode); code != events.DLQInvalidEvent {
		t.Errorf("%s: dead letter code %q, want %s", it.Name, code, events.DLQInvalidEvent)
	}
	if !bytes.Equal(m.Data, event) {
		t.Errorf("%s: the dead letter does not keep the original bytes", it.Name)
	}
	if msg := m.Header.Get(events.HeaderErrorMessage); len(msg) > 4000 || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("%s: dead letter message of %d bytes", it.Name, len(msg))
	}
	return "nats=dlq:" + m.Header.Get(events.HeaderErrorCode)
}

// ordinaryEvent publishes an ordinary paid event of a new customer and
// waits for its result.
func (h *hostileEngine) ordinaryEvent(ctx context.Context, t *testing.T, after string) {
	t.Helper()
	h.ordinary++
	id := fmt.Sprintf("ordinary-%d-%d", h.ordinary, time.Now().UnixNano())
	body := fmt.Sprintf(`{"event_id":%q,"type":"pos.order.paid","occurred_at":"2026-11-28T10:15:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR","customer_id":%q,"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"5000"}]}}`, id, id, id)
	js, err := h.nc.JetStream()
	require.NoError(t, err)
	_, err = js.Publish(h.subjects.OrdersPaid(), []byte(body), nats.MsgId(id))
	require.NoError(t, err)
	h.wait(ctx, t, "the ordinary event after "+after, func() *nats.Msg { return h.results[id] })
}

// waitCatalogInForce waits until a quote is priced with the catalog just
// applied (the engine switches on the store's NOTIFY).
func (h *hostileEngine) waitCatalogInForce(ctx context.Context, t *testing.T, name string, version int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		a := h.http(ctx, t, http.MethodPost, "/v1/quote", hostilePOSKey,
			[]byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`))
		var r events.OrderResult
		if a.status == http.StatusOK && json.Unmarshal(a.body, &r) == nil && r.CatalogVersion == version {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s: catalog version %d not in force after a minute", name, version)
}

func (h *hostileEngine) wait(ctx context.Context, t *testing.T, what string, get func() *nats.Msg) *nats.Msg {
	t.Helper()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for {
		h.mu.Lock()
		m := get()
		h.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-h.changed:
		case <-time.After(100 * time.Millisecond):
		case <-timeout.C:
			t.Errorf("%s: nothing after 2 minutes: the engine stalled", what)
			return nil
		case <-ctx.Done():
			t.Errorf("%s: %v", what, ctx.Err())
			return nil
		}
	}
}

// checkNoSecret: nothing the engine was given as a secret is in its log.
func (h *hostileEngine) checkNoSecret(t *testing.T) {
	t.Helper()
	log := h.proc.Log()
	require.Contains(t, log, "starting promoengine", "the configuration was logged")
	for _, s := range h.secrets {
		if strings.Contains(log, s) {
			t.Errorf("a secret (%.4s…) is in the engine's log", s)
		}
	}
}
