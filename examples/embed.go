// Package examples embeds the example catalog and orders so that
// `promoengine dev` works from any directory.
package examples

import _ "embed"

// Catalog is examples/catalog.yaml: an Indonesian minimarket chain.
//
//go:embed catalog.yaml
var Catalog []byte

// Orders is examples/orders.jsonl: a day of orders for that catalog.
//
//go:embed orders.jsonl
var Orders []byte
