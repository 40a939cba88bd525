package odootest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// LoadModels adds the records of a recorded answer set: JSON of the shape
// {"models": {"loyalty.program": [{"id": 4, …}, …], …}}, as
// loyalty.Snapshot is written (internal/odoo/loyalty/testdata). Numbers
// keep their digits.
func (s *Server) LoadModels(t testing.TB, data []byte) {
	t.Helper()
	var doc struct {
		Models map[string][]map[string]any `json:"models"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	require.NoError(t, d.Decode(&doc))
	for model, recs := range doc.Models {
		for _, r := range recs {
			id, err := r["id"].(json.Number).Int64()
			require.NoError(t, err, "%s record without an integer id", model)
			s.Add(model, id, r)
		}
	}
}
