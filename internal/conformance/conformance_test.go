package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// CouponSecret is the engine's PROMO_COUPON_SECRET in every scenario: the
// codes a scenario's orders present are the ones it derives (the project's
// scenarios note how each was computed).
const CouponSecret = "conformance-coupon-secret"

// scenario is one conformance file (see testdata/shared/README.md).
type scenario struct {
	Name    string    `yaml:"name"`
	Catalog yaml.Node `yaml:"catalog"`
	Steps   []step    `yaml:"steps"`
}

type step struct {
	Publish      map[string]any `yaml:"publish"`
	PublishRaw   *string        `yaml:"publish_raw"`
	Subject      string         `yaml:"subject"`
	Expect       any            `yaml:"expect"`
	ExpectDLQ    map[string]any `yaml:"expect_dlq"`
	Jobs         string         `yaml:"jobs"`
	ExpectEvents *[]any         `yaml:"expect_events"`
}

// scenarioFiles returns the shared scenarios — from ../shared/conformance
// next to the repository when it is there, else the copies in
// testdata/shared — and the project's own from testdata/scenarios.
func scenarioFiles(t *testing.T) []string {
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Dir(here)
	shared := filepath.Join(dir, "..", "..", "..", "shared", "conformance")
	if _, err := os.Stat(shared); err != nil {
		shared = filepath.Join(dir, "testdata", "shared")
	}
	var files []string
	for _, d := range []string{shared, filepath.Join(dir, "testdata", "scenarios")} {
		m, err := filepath.Glob(filepath.Join(d, "*.yaml"))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	return files
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, file := range scenarioFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			t.Parallel()
			runScenario(t, file)
		})
	}
}

// harness is one scenario's engine and its observers.
type harness struct {
	t       *testing.T
	name    string
	env     testbin.Env
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	results *collector
	dlq     *collector
}

func runScenario(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var sc scenario
	require.NoError(t, yaml.Unmarshal(raw, &sc), file)

	ns := testnats.New(t)
	dbURL := testdb.NewDatabase(t)
	env := testbin.Env{"PROMO_NATS_URL": ns.URL(), "PROMO_DATABASE_URL": dbURL, "PROMO_COUPON_SECRET": CouponSecret}

	// The catalog goes through `promoengine catalog apply`, as YAML.
	catYAML, err := yaml.Marshal(&sc.Catalog)
	require.NoError(t, err)
	catFile := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catFile, catYAML, 0o600))
	res := testbin.Run(t, env, "catalog", "apply", "-f", catFile)
	require.Equal(t, 0, res.ExitCode, "catalog apply:\n%s%s", res.Stdout, res.Stderr)

	testbin.Start(t, env, "run", "--workers", "orders,outbox,odoo,api")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	js := ns.JetStream(t)
	subjects := events.NewSubjects("")
	h := &harness{t: t, name: sc.Name, env: env, js: js, pool: pool,
		results: collect(ctx, t, js, subjects.StreamResults()),
		dlq:     collect(ctx, t, js, subjects.StreamDLQ())}

	for i, st := range sc.Steps {
		label := fmt.Sprintf("scenario %q (%s), step %d", sc.Name, filepath.Base(file), i+1)
		switch {
		case st.Publish != nil:
			h.publishEvent(ctx, label, st)
		case st.PublishRaw != nil:
			h.publishRaw(ctx, label, st)
		case st.Jobs != "":
			h.runJobs(ctx, label, st)
		default:
			t.Fatalf("%s: unknown step kind", label)
		}
	}
}

func (h *harness) publishEvent(ctx context.Context, label string, st step) {
	t := h.t
	body, err := json.Marshal(toJSONValue(st.Publish))
	require.NoError(t, err)
	eventID := fmt.Sprint(st.Publish["event_id"])
	typ := fmt.Sprint(st.Publish["type"])
	subject := "pos.orders." + typ[strings.LastIndex(typ, ".")+1:]
	if st.Subject != "" {
		subject = st.Subject
	}
	ack, err := h.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: body,
		Header: nats.Header{jetstream.MsgIDHeader: []string{eventID}}})
	require.NoError(t, err, label)
	h.expectOutcome(label, ack.Sequence, func(m *nats.Msg) bool {
		var r map[string]any
		return json.Unmarshal(m.Data, &r) == nil && r["causation_id"] == eventID && r["type"] == events.TypeOrderResult
	}, st)
}

func (h *harness) publishRaw(ctx context.Context, label string, st step) {
	require.NotEmpty(h.t, st.Subject, "%s: publish_raw needs a subject", label)
	ack, err := h.js.Publish(ctx, st.Subject, []byte(*st.PublishRaw))
	require.NoError(h.t, err, label)
	h.expectOutcome(label, ack.Sequence, nil, st)
}

// expectOutcome waits for the result (isResult) or the dead letter of the
// message stored at seq, and matches the step's expectation.
func (h *harness) expectOutcome(label string, seq uint64, isResult func(*nats.Msg) bool, st step) {
	t := h.t
	if st.ExpectDLQ != nil || isResult == nil {
		// The letter is of the published message, or of the keyed copy the
		// engine made of it (workers.Keyer).
		want := strconv.FormatUint(seq, 10)
		letter := h.dlq.waitFor(t, label+": dead letter", func(m *nats.Msg) bool {
			return m.Header.Get(events.HeaderOriginalSeq) == want || m.Header.Get(events.HeaderKeyedFrom) == want
		})
		actual := map[string]any{
			"code":    letter.Header.Get(events.HeaderErrorCode),
			"message": letter.Header.Get(events.HeaderErrorMessage),
			"subject": strings.TrimPrefix(letter.Subject, "promo.dlq."),
		}
		h.report(label, st.ExpectDLQ, actual)
		return
	}
	msg := h.results.waitFor(t, label+": result", isResult)
	var actual any
	require.NoError(t, json.Unmarshal(msg.Data, &actual))
	h.report(label, st.Expect, actual)
}

func (h *harness) runJobs(ctx context.Context, label string, st step) {
	t := h.t
	before := h.results.count()
	res := testbin.Run(t, h.env, "jobs", "run", "--as-of", st.Jobs)
	require.Equal(t, 0, res.ExitCode, "%s: jobs run:\n%s%s", label, res.Stdout, res.Stderr)
	h.waitOutboxPublished(ctx, label)
	var got []map[string]any
	for _, m := range h.results.since(before) {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		if ev["type"] == events.TypePointsExpired || ev["type"] == events.TypeLevelChanged || ev["type"] == events.TypeLevelWarning {
			got = append(got, ev)
		}
	}
	sort.SliceStable(got, func(i, j int) bool {
		return fmt.Sprint(got[i]["customer_id"]) < fmt.Sprint(got[j]["customer_id"])
	})
	actual := make([]any, len(got))
	for i, g := range got {
		actual[i] = g
	}
	if st.ExpectEvents != nil {
		h.report(label, *st.ExpectEvents, actual)
	}
}

// waitOutboxPublished waits until every outbox row is published and the
// collector has read the stream up to its last message.
func (h *harness) waitOutboxPublished(ctx context.Context, label string) {
	t := h.t
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		require.NoError(t, h.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		if n == 0 {
			stream, err := h.js.Stream(ctx, events.NewSubjects("").StreamResults())
			require.NoError(t, err)
			info, err := stream.Info(ctx)
			require.NoError(t, err)
			if h.results.lastSeq() >= info.State.LastSeq {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: outbox not published within 30s", label)
}

func (h *harness) report(label string, expected, actual any) {
	if ms := Match(expected, actual); len(ms) > 0 {
		var b strings.Builder
		for _, m := range ms {
			b.WriteString("\n    " + m.String())
		}
		full, _ := json.MarshalIndent(actual, "    ", "  ")
		h.t.Errorf("%s: %d mismatches:%s\n  whole actual value:\n    %s", label, len(ms), b.String(), full)
	}
}

// toJSONValue converts YAML-decoded values for JSON encoding.
func toJSONValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[k] = toJSONValue(vv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = toJSONValue(vv)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// collector reads a whole stream with an ordered consumer.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	seqs []uint64
	wake chan struct{}
}

func collect(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) *collector {
	c := &collector{wake: make(chan struct{}, 1)}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		c.seqs = append(c.seqs, md.Sequence.Stream)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return c
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) lastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seqs) == 0 {
		return 0
	}
	return c.seqs[len(c.seqs)-1]
}

func (c *collector) since(n int) []*nats.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*nats.Msg(nil), c.msgs[n:]...)
}

func (c *collector) waitFor(t *testing.T, what string, ok func(*nats.Msg) bool) *nats.Msg {
	t.Helper()
	deadline := time.After(30 * time.Second)
	seen := 0
	for {
		c.mu.Lock()
		for ; seen < len(c.msgs); seen++ {
			if ok(c.msgs[seen]) {
				m := c.msgs[seen]
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: nothing arrived within 30s", what)
		}
	}
}
