package grpcapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSON renders the contract's messages as JSON with the SPEC's field names
// (event_id, not eventId), every field the HTTP API always writes written
// even when zero ("duplicate": false, "discounts": []), and the optional
// fields only when set; Connect clients that ask for JSON get exactly this.
// Reading accepts both the SPEC's names and protobuf's lowerCamelCase ones,
// and ignores unknown fields, as the HTTP API does.
var JSON = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// readJSON is how JSON is read.
var readJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// Compact renders m with JSON, without the whitespace protojson adds at
// random (protojson's output is deliberately unstable between builds).
func Compact(m proto.Message) ([]byte, error) { return compact(JSON, m) }

// requestJSON renders a request as the JSON body the HTTP API reads: the
// SPEC's field names, unset and empty fields left out (an empty string is
// an absent field), compact.
func requestJSON(m proto.Message) ([]byte, error) {
	return compact(protojson.MarshalOptions{UseProtoNames: true}, m)
}

func compact(o protojson.MarshalOptions, m proto.Message) ([]byte, error) {
	b, err := o.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// fromJSON fills m from the JSON answer of an API operation: the value the
// HTTP route would write, read into the message that mirrors it.
func fromJSON(v any, m proto.Message) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := readJSON.Unmarshal(b, m); err != nil {
		return fmt.Errorf("grpcapi: %T does not read as %T: %w", v, m, err)
	}
	return nil
}

// jsonCodec is the Connect JSON codec of the service, under both names a
// client may ask for.
type jsonCodec struct{ name string }

func (c jsonCodec) Name() string { return c.name }

func (c jsonCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpcapi: %T is not a protobuf message", v)
	}
	return Compact(m)
}

// MarshalStable is Marshal: the output is compact, hence stable.
func (c jsonCodec) MarshalStable(v any) ([]byte, error) { return c.Marshal(v) }

func (c jsonCodec) IsBinary() bool { return false }

func (c jsonCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpcapi: %T is not a protobuf message", v)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("grpcapi: an empty body is not a JSON object")
	}
	return readJSON.Unmarshal(data, m)
}
