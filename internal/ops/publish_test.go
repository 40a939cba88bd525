package ops_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/events"
)

func paid(id, customer, category, qty, price string) string {
	cust := ""
	if customer != "" {
		cust = fmt.Sprintf(`"customer_id":%q,`, customer)
	}
	return fmt.Sprintf(`{"event_id":"t:pos.order:%s:paid","type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00",`+
		`"company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR",%s`+
		`"lines":[{"id":"1","product_id":"p1","category_ids":[%q],"qty":%q,"unit_price":%q}]}}`,
		id, id, cust, category, qty, price)
}

func returned(id, original, qty string) string {
	return fmt.Sprintf(`{"event_id":"t:pos.order:%s:returned","type":"pos.order.returned","occurred_at":"2026-11-25T10:00:00+07:00",`+
		`"company_id":"1","pos_config_id":"1","order":{"id":%q,"original_order_id":%q,"lines":[{"line_id":"1","qty":%q}]}}`,
		id, id, original, qty)
}

// A backfill published twice produces each result once: the second run is
// all duplicates inside the duplicate window, and nothing new reaches the
// workers.
func TestPublishBackfillTwiceProducesEachResultOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog(examples.Catalog)
	b.startEngine(10, config.WorkerOrders, config.WorkerOutbox)
	lines := exampleOrders()

	prog := &recordingProgress{}
	first, err := b.op.Publish(b.ctx, bytes.NewReader(examples.Orders), ops.PublishOptions{Progress: prog, Size: int64(len(examples.Orders))})
	require.NoError(t, err)
	require.True(t, first.OK(), "%+v", first)
	require.Equal(t, len(lines), first.Lines)
	require.Equal(t, len(lines), first.Published)
	require.Zero(t, first.Duplicates)
	require.Equal(t, []string{"publishing"}, prog.stages)
	require.Equal(t, int64(len(examples.Orders)), prog.last)
	b.settled()

	second, err := b.op.Publish(b.ctx, bytes.NewReader(examples.Orders), ops.PublishOptions{Window: 7})
	require.NoError(t, err)
	require.True(t, second.OK())
	require.Zero(t, second.Published)
	require.Equal(t, len(lines), second.Duplicates)
	b.settled()

	require.Len(t, b.messages(b.subjects.StreamOrders()), len(lines), "the rerun stored nothing")
	results := b.results()
	require.Len(t, results, len(lines))
	for id, rs := range results {
		require.Len(t, rs, 1, "results of %s", id)
	}
	require.Equal(t, len(lines), b.count(`SELECT count(*) FROM inbox`))
}

// Each message goes to the subject of its type with its event_id as
// Nats-Msg-Id and the line's bytes unchanged.
func TestPublishSubjectsAndMessageIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lines := []string{paid("1", "c1", "drinks", "1", "1000"), "", "   ", returned("2", "1", "1")}
	rep, err := b.op.Publish(b.ctx, jsonl(lines...), ops.PublishOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Published)
	require.Equal(t, 2, rep.Lines, "blank lines are not counted")
	msgs := b.messages(b.subjects.StreamOrders())
	require.Len(t, msgs, 2)
	// Keyed by the customer; the return by its sale's customer, known from
	// the line before it in the file.
	token := events.CustomerKey("c1").Token()
	require.Regexp(t, `^pos\.orders\.paid\.\d+\.`+token+`$`, msgs[0].Subject)
	require.Equal(t, "t:pos.order:1:paid", msgs[0].Header.Get(jetstream.MsgIDHeader))
	require.Equal(t, lines[0], string(msgs[0].Data))
	require.Regexp(t, `^pos\.orders\.returned\.\d+\.`+token+`$`, msgs[1].Subject)
	require.Equal(t, "t:pos.order:2:returned", msgs[1].Header.Get(jetstream.MsgIDHeader))
}

// Without --strict bad lines are reported with their line number and
// violations and skipped; the others are published.
func TestPublishSkipsInvalidLines(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var seen []ops.InvalidLine
	rep, err := b.op.Publish(b.ctx, jsonl(
		paid("1", "", "drinks", "1", "1000"),
		`{"event_id":"x","type":"pos.order.paid"`,
		paid("3", "", "drinks", "0", "1000"),
		paid("4", "", "drinks", "1", "1000"),
	), ops.PublishOptions{OnInvalid: func(l ops.InvalidLine) { seen = append(seen, l) }})
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, 2, rep.Published)
	require.Equal(t, 2, rep.Invalid)
	require.Equal(t, seen, rep.InvalidLines)
	require.Equal(t, 2, rep.InvalidLines[0].Line)
	require.Contains(t, rep.InvalidLines[0].Violations[0], "not valid JSON")
	require.Equal(t, 3, rep.InvalidLines[1].Line)
	require.Contains(t, strings.Join(rep.InvalidLines[1].Violations, "; "), "/order/lines/0/qty")
	require.Len(t, b.messages(b.subjects.StreamOrders()), 2)
}

// --strict publishes nothing when a line is bad, and names the line.
func TestPublishStrictRefusesFileWithBadLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	file := filepath.Join(t.TempDir(), "orders.jsonl")
	content := strings.Join([]string{
		paid("1", "", "drinks", "1", "1000"),
		paid("2", "", "drinks", "1", "1000"),
		strings.Replace(paid("3", "", "drinks", "1", "1000"), "+07:00", "", 1),
	}, "\n")
	require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	prog := &recordingProgress{}
	rep, err := b.op.Publish(b.ctx, f, ops.PublishOptions{Strict: true, Progress: prog})
	require.NoError(t, err)
	require.True(t, rep.Refused)
	require.Equal(t, 1, rep.Invalid)
	require.Equal(t, 3, rep.InvalidLines[0].Line)
	require.Contains(t, rep.InvalidLines[0].Violations[0], "/occurred_at")
	require.Zero(t, rep.Published)
	require.Equal(t, []string{"validating"}, prog.stages)
	require.Empty(t, b.messages(b.subjects.StreamOrders()))

	// A valid file goes through both passes, from a pipe as from a file.
	rep, err = b.op.Publish(b.ctx, jsonl(paid("1", "", "drinks", "1", "1000"), paid("2", "", "drinks", "1", "1000")),
		ops.PublishOptions{Strict: true})
	require.NoError(t, err)
	require.True(t, rep.OK())
	require.Equal(t, 2, rep.Published)
	require.Equal(t, 2, rep.Lines)
}

// A line over 1 MiB is refused without reading it into memory whole.
func TestPublishRefusesOversizedLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	huge := `{"event_id":"big","pad":"` + strings.Repeat("x", events.MaxEventBytes+10) + `"}`
	rep, err := b.op.Publish(b.ctx, jsonl(huge, paid("2", "", "drinks", "1", "1000")), ops.PublishOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Invalid)
	require.Equal(t, 1, rep.InvalidLines[0].Line)
	require.Contains(t, rep.InvalidLines[0].Violations[0], "over the limit")
	require.Equal(t, 1, rep.Published)
}

// --rate spaces the publishes out (a lower bound only: the test must not
// depend on the machine's speed).
func TestPublishRate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var lines []string
	for i := range 11 {
		lines = append(lines, paid(fmt.Sprint(i), "", "drinks", "1", "1000"))
	}
	start := time.Now()
	rep, err := b.op.Publish(b.ctx, jsonl(lines...), ops.PublishOptions{Rate: 20})
	require.NoError(t, err)
	require.Equal(t, 11, rep.Published)
	require.GreaterOrEqual(t, time.Since(start), 490*time.Millisecond, "11 events at 20/s take at least 500 ms")
}

// Without the engine's streams, publish says what to do.
func TestPublishWithoutStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.js.DeleteStream(b.ctx, b.subjects.StreamOrders()))
	_, err := b.op.Publish(b.ctx, jsonl(paid("1", "", "drinks", "1", "1000")), ops.PublishOptions{})
	require.ErrorIs(t, err, ops.ErrStreamMissing)
	require.Contains(t, err.Error(), "POS_ORDERS")
}
