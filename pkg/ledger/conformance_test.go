package ledger_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// The conformance scenarios of shared/conformance that concern the ledger
// (points, FEFO, returns, expiry, membership), replayed at the ledger level:
// each jobs step is a RunJobs, and expectations match the results and the
// events the step enqueued, with the scenarios' partial matching rules.
// Publish steps run twice over: each in its own transaction with Process,
// and every run of consecutive publish steps in one transaction with a
// Batch.
func TestConformance(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/0*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		for _, batched := range []bool{false, true} {
			name := filepath.Base(file) + "/one_by_one"
			if batched {
				name = filepath.Base(file) + "/batch"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runConformance(t, file, batched)
			})
		}
	}
}

func runConformance(t *testing.T, file string, batched bool) {
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var sc struct {
		Catalog any              `yaml:"catalog"`
		Steps   []map[string]any `yaml:"steps"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &sc))
	doc, err := json.Marshal(sc.Catalog)
	require.NoError(t, err)
	b := setup(t, string(doc))

	// Results of publish steps, by step, when batched: every run of
	// consecutive publish steps is applied when its first step is reached.
	batchResults := map[int]*events.OrderResult{}
	decodeStep := func(i int) *events.Event {
		evJSON, err := json.Marshal(sc.Steps[i]["publish"])
		require.NoError(t, err)
		ev, err := events.Decode(evJSON)
		require.NoError(t, err, "step %d", i)
		return ev
	}

	for i, step := range sc.Steps {
		switch {
		case step["publish"] != nil:
			ev := decodeStep(i)
			var res *events.OrderResult
			if batched {
				if _, done := batchResults[i]; !done {
					var run []ledger.BatchEvent
					for j := i; j < len(sc.Steps) && sc.Steps[j]["publish"] != nil; j++ {
						run = append(run, ledger.BatchEvent{Event: decodeStep(j)})
					}
					var results []*events.OrderResult
					require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
						var err error
						results, err = b.store.NewBatch(tx, b.cat).Process(b.ctx, run)
						return err
					}), "steps %d-%d", i, i+len(run)-1)
					for k, r := range results {
						batchResults[i+k] = r
					}
				}
				res = batchResults[i]
			} else {
				res = b.process(t, ev)
			}
			require.NotNil(t, res, "step %d", i)
			got := toAny(t, res)
			if os.Getenv("SHOW") != "" {
				t.Log(mustJSON(res))
			}
			if msg := match(step["expect"], got, ""); msg != "" {
				t.Fatalf("step %d (%s): %s\nresult: %s", i, ev.EventID, msg, mustJSON(res))
			}
		case step["jobs"] != nil:
			before := scalar[int64](t, b, `SELECT COALESCE(max(id), 0) FROM outbox`)
			asOf := step["jobs"].(string)
			b.jobs(t, asOf)
			rows, err := b.pool.Query(b.ctx, `SELECT payload FROM outbox WHERE id > $1 AND subject IN ($2, $3) ORDER BY id`,
				before, events.NewSubjects("").ResultsPointsExpired(), events.NewSubjects("").ResultsLevelChanged())
			require.NoError(t, err)
			payloads, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			require.NoError(t, err)
			var got []any
			for _, p := range payloads {
				var v any
				require.NoError(t, json.Unmarshal(p, &v))
				got = append(got, v)
			}
			want, _ := step["expect_events"].([]any)
			if got == nil {
				got = []any{}
			}
			if want == nil {
				want = []any{}
			}
			if msg := match(want, any(got), ""); msg != "" {
				t.Fatalf("step %d (jobs %s): %s\nevents: %s", i, asOf, msg, mustJSON(got))
			}
		default:
			t.Fatalf("step %d: unknown step %v", i, step)
		}
	}
}

func toAny(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func mustJSON(v any) string {
	raw, _ := json.MarshalIndent(v, "", "  ")
	return string(raw)
}

// match applies the conformance README's rules: every key of want must
// match, lists match in length and element by element, decimal strings
// compare as decimals and times as instants. It returns "" on a match.
func match(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %v", path, got)
		}
		for k, wv := range w {
			gv, present := g[k]
			if !present {
				return fmt.Sprintf("%s/%s: missing", path, k)
			}
			if msg := match(wv, gv, path+"/"+k); msg != "" {
				return msg
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			if got == nil && len(w) == 0 {
				return ""
			}
			return fmt.Sprintf("%s: want a list, got %v", path, got)
		}
		if len(w) != len(g) {
			return fmt.Sprintf("%s: want %d elements, got %d", path, len(w), len(g))
		}
		for i := range w {
			if msg := match(w[i], g[i], fmt.Sprintf("%s/%d", path, i)); msg != "" {
				return msg
			}
		}
		return ""
	case string:
		g, ok := got.(string)
		if !ok {
			return fmt.Sprintf("%s: want %q, got %v", path, w, got)
		}
		if wd, err := dec.Parse(w); err == nil {
			if gd, err := dec.Parse(g); err == nil && wd.Equal(gd) {
				return ""
			}
		}
		if wt, err := time.Parse(time.RFC3339, w); err == nil {
			if gt, err := time.Parse(time.RFC3339, g); err == nil && wt.Equal(gt) {
				return ""
			}
		}
		if w != g {
			return fmt.Sprintf("%s: want %q, got %q", path, w, g)
		}
		return ""
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Sprintf("%s: want %v, got %v", path, want, got)
		}
		return ""
	}
}
