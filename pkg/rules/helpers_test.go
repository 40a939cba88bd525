package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/promoengine/promoengine/pkg/dec"
)

// The module has no assertion library, so these few helpers stand in for
// testify's require: each stops the test at the first failure.

func requireNoError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func requireEqual[T comparable](t testing.TB, want, got T, what string) {
	t.Helper()
	if want != got {
		t.Fatalf("%s: want %v, got %v", what, want, got)
	}
}

func requireDeepEqual(t testing.TB, want, got any, what string) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s:\nwant %s\ngot  %s", what, dump(want), dump(got))
	}
}

func requireContains(t testing.TB, s, sub, what string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s: %q does not contain %q", what, s, sub)
	}
}

// requireDec compares a decimal with its exact text, trailing zeros
// included: "5.00" is not "5".
func requireDec(t testing.TB, want string, got dec.Decimal, what string) {
	t.Helper()
	if got.String() != want {
		t.Fatalf("%s: want %s, got %s", what, want, got.String())
	}
}

func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func ptrDec(s string) *dec.Decimal { d := dec.MustParse(s); return &d }

func decOf(s string) dec.Decimal { return dec.MustParse(s) }
