package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/promoengine/promoengine/internal/streams"
)

// ErrEnginesRunning is returned by Repartition while an engine process is
// alive (it beats its key in the membership bucket).
var ErrEnginesRunning = errors.New("ops: engine processes are running")

// Repartition changes the number of partitions of POS_ORDERS
// (streams.Repartition) once no engine process is alive.
func (o *Operator) Repartition(ctx context.Context, n int, t streams.Timing, maxAckPending int) (*streams.RepartitionReport, error) {
	if n < 1 {
		return nil, fmt.Errorf("ops: %d partitions: want at least 1", n)
	}
	if _, err := o.stream(ctx, o.subjects.StreamOrders()); err != nil {
		return nil, err
	}
	nodes, err := o.nodes(ctx)
	if err != nil {
		return nil, err
	}
	if len(nodes) > 0 {
		ids := make([]string, len(nodes))
		for i, nd := range nodes {
			ids[i] = nd.ID
		}
		return nil, fmt.Errorf("%w: %s; stop them all first (a stopped process leaves within 5 s)", ErrEnginesRunning, strings.Join(ids, ", "))
	}
	return streams.Repartition(ctx, o.js, o.subjects, n, t, maxAckPending)
}
