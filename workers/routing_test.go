package workers

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

// A return published right behind its sale, and the customer's next sale
// right behind it, take effect in that order even though the return carries
// no customer: it is routed to the sale's lane as the sale is routed, not
// once the sale is committed. (Before, the return could be routed by order
// id to another lane and race the next sale; the next sale's balance then
// depended on timing.)
func TestReturnBehindItsSaleKeepsCustomerOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	var last []string
	for round := range 10 {
		c := fmt.Sprintf("rt-%d", round)
		sale := fmt.Sprintf("%s-sale", c)
		ret := fmt.Sprintf("%s-ret", c)
		next := fmt.Sprintf("%s-next", c)
		b.publish(b.subjects.OrdersPaid(), paidEvent(sale, c, line("1", "food", "2", "10000")), sale)
		b.publish(b.subjects.OrdersReturned(), []byte(fmt.Sprintf(`{"event_id":%q,"type":"pos.order.returned","occurred_at":"2026-11-24T10:01:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":%q,"original_order_id":%q,"lines":[{"line_id":"1","qty":"1"}]}}`,
			ret, "r-"+ret, "o-"+sale)), ret)
		b.publish(b.subjects.OrdersPaid(), paidEvent(next, c, line("1", "food", "1", "5000")), next)
		last = append(last, next)
	}
	rs := b.waitResults(last...)
	for _, id := range last {
		// 20 points, 10 clawed back by the return, then 5 more: 15.
		require.Equal(t, "15", rs[id][0]["points"].(map[string]any)["balance"], id)
	}
}

// A sale refused as a duplicate order id (another customer's) does not
// take over the order: a return of it still claws back from the customer
// whose sale was committed.
func TestRefusedSaleDoesNotTakeTheOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.publish(b.subjects.OrdersPaid(), paidEvent("dup-a", "alice", line("1", "food", "1", "10000")), "dup-a")
	// Same order id ("o-dup-a"), another customer, another event id.
	other := []byte(`{"event_id":"dup-b","type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":"o-dup-a","currency":"IDR","customer_id":"bob","lines":[{"id":"1","product_id":"p1","qty":"1","unit_price":"1"}]}}`)
	b.publish(b.subjects.OrdersPaid(), other, "dup-b")
	b.publish(b.subjects.OrdersReturned(), []byte(`{"event_id":"dup-ret","type":"pos.order.returned","occurred_at":"2026-11-24T10:01:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":"r-dup","original_order_id":"o-dup-a","lines":[{"line_id":"1","qty":"1"}]}}`), "dup-ret")
	rs := b.waitResults("dup-a", "dup-ret")
	b.waitQuiet()
	letters := b.streamMsgs(b.subjects.StreamDLQ())
	require.Len(t, letters, 1)
	require.Equal(t, events.DLQDuplicateOrder, letters[0].Header.Get(events.HeaderErrorCode))
	require.Equal(t, "alice", rs["dup-ret"][0]["customer_id"])
	require.Equal(t, "0", rs["dup-ret"][0]["points"].(map[string]any)["balance"], "alice's 10 points clawed back")
}
