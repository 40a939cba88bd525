package main

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The engine's own share of the end-to-end latency, from its histograms
// (read from each engine's /metrics when the run ends, summed over the
// engines): receipt by the order worker → commit, one transaction, and
// commit → JetStream's acknowledgement of the result's publish by the
// outbox relay. What the end-to-end figure has beyond the first and the
// third is NATS: the order's publish and delivery to the engine, and the
// result's delivery to the load generator.
var shareHistograms = []struct{ name, label string }{
	{"promo_event_processing_seconds", "receipt → commit (per event)"},
	{"promo_batch_seconds", "transaction, begin → commit (per batch)"},
	{"promo_outbox_delay_seconds", "commit → result published (per result)"},
}

// scrapeHistograms reads the named histograms of every engine and sums
// them over the engines (and over their labels).
func scrapeHistograms(addrs []string) (map[string]*histogram, error) {
	out := map[string]*histogram{}
	for _, addr := range addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		for _, name := range append(histogramNames(), "promo_batch_size") {
			f := fams[name]
			if f == nil {
				continue
			}
			for _, m := range f.GetMetric() {
				if m.GetHistogram() == nil {
					continue
				}
				h := out[name]
				if h == nil {
					h = &histogram{}
					out[name] = h
				}
				h.add(m.GetHistogram())
			}
		}
	}
	return out, nil
}

func histogramNames() []string {
	names := make([]string, len(shareHistograms))
	for i, s := range shareHistograms {
		names[i] = s.name
	}
	return names
}

// histogram is a Prometheus histogram: cumulative counts by upper bound.
type histogram struct {
	bounds []float64
	counts []uint64 // cumulative
	count  uint64
	sum    float64
}

func (h *histogram) add(p *dto.Histogram) {
	for _, b := range p.GetBucket() {
		i, found := slices.BinarySearch(h.bounds, b.GetUpperBound())
		if !found {
			h.bounds = slices.Insert(h.bounds, i, b.GetUpperBound())
			h.counts = slices.Insert(h.counts, i, 0)
		}
		h.counts[i] += b.GetCumulativeCount()
	}
	h.count += p.GetSampleCount()
	h.sum += p.GetSampleSum()
}

// quantile interpolates linearly inside the bucket holding q, as
// PromQL's histogram_quantile does; above the last bound it is +Inf.
func (h *histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.bounds {
		if float64(h.counts[i]) >= rank {
			in := h.counts[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, h.counts[i]
	}
	return math.Inf(1)
}

func (h *histogram) mean() float64 {
	if h.count == 0 {
		return math.NaN()
	}
	return h.sum / float64(h.count)
}

// printShare prints the engine's share of the latency.
func printShare(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	hs, err := scrapeHistograms(addrs)
	if err != nil {
		fmt.Printf("\nengine share: %v\n", err)
		return
	}
	seconds := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v)
		}
		return time.Duration(v * float64(time.Second)).Round(10 * time.Microsecond).String()
	}
	fmt.Printf("\n| engine share (its histograms, whole run) | count | mean | p50 | p99 | p99.9 |\n|---|---|---|---|---|---|\n")
	for _, s := range shareHistograms {
		h := hs[s.name]
		if h == nil {
			continue
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s |\n", s.label, h.count, seconds(h.mean()),
			seconds(h.quantile(0.5)), seconds(h.quantile(0.99)), seconds(h.quantile(0.999)))
	}
	if h := hs["promo_batch_size"]; h != nil {
		fmt.Printf("events per transaction: mean %.1f, p50 %.0f, p99 %.0f (bucket bounds)\n", h.mean(), h.quantile(0.5), h.quantile(0.99))
	}
}
