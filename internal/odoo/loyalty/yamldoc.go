package loyalty

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The catalog is written as a yaml.Node tree, so that keys keep the order a
// person reads them in (id, layer, priority, valid, when, limits, reward)
// and every program carries, as a comment, the Odoo records it comes from
// and where the engine will differ.

// kv is one key of a mapping; v is a string (written quoted), an int, a
// bool, []string, or a *mapping.
type kv struct {
	k string
	v any
}

// mapping is an ordered YAML mapping; flow writes it on one line.
type mapping struct {
	kvs  []kv
	flow bool
}

func (m *mapping) set(k string, v any) { m.kvs = append(m.kvs, kv{k, v}) }

func (m *mapping) empty() bool { return m == nil || len(m.kvs) == 0 }

func (m *mapping) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if m.flow {
		n.Style = yaml.FlowStyle
	}
	for _, e := range m.kvs {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e.k}, valueNode(e.v))
	}
	return n
}

func valueNode(v any) *yaml.Node {
	switch x := v.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x, Style: yaml.DoubleQuotedStyle}
	case word:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(x)}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(x)}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(x, 10)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range x {
			n.Content = append(n.Content, valueNode(s))
		}
		return n
	case *mapping:
		return x.node()
	case []*mapping:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, m := range x {
			n.Content = append(n.Content, m.node())
		}
		return n
	}
	panic("loyalty: unsupported YAML value")
}

// word is a string written without quotes: an enum value (item, order)
// or a time zone, which read the same either way.
type word string
