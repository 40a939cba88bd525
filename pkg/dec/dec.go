// Package dec is promoengine's decimal discipline: every amount of money and
// every point count is an apd decimal, exact from the wire to the database.
//
// Decimal wraps apd.Decimal so that it travels as a JSON string, accepts a
// JSON number on input read from its literal text (never through float64),
// and parses the same way from YAML and from Postgres numeric text.
//
// Arithmetic goes through one explicit context (34 significant digits, the
// IEEE decimal128 precision) with every trap on. Inputs are bounded by the
// schemas (at most 15 integer digits and 10 fractional digits), so a trap can
// only fire on a programming error — a division by zero a caller should have
// ruled out — and the helpers panic with the condition rather than return a
// wrong number. Values are immutable by convention: every helper returns a
// fresh Decimal and never writes into its arguments, which is what makes
// copying a Decimal by value safe.
package dec

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// Precision is the number of significant digits every operation keeps.
const Precision = 34

// ctx is the one arithmetic context: 34 digits, traps on every condition that
// would make a result inexact in a way we did not ask for. Rounding to money
// decimals is done explicitly by Round and Floor, never implicitly.
var ctx = apd.Context{
	Precision:   Precision,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Traps:       apd.DefaultTraps,
	Rounding:    apd.RoundHalfEven,
}

// ErrSyntax reports text that is not a finite decimal number.
var ErrSyntax = errors.New("dec: not a decimal number")

// Decimal is a finite decimal number. The zero value is 0.
type Decimal struct{ d apd.Decimal }

// Zero and One are convenient constants; never mutate them.
var (
	Zero    = Decimal{}
	One     = FromInt(1)
	Hundred = FromInt(100)
)

// FromInt returns the integer i as a Decimal.
func FromInt(i int64) Decimal {
	var x Decimal
	x.d.SetInt64(i)
	return x
}

// FromAPD copies an apd decimal.
func FromAPD(a *apd.Decimal) Decimal {
	var x Decimal
	x.d.Set(a)
	x.unsign()
	return x
}

// Bounds of the text Parse reads. Every decimal promoengine accepts has at
// most 15 integer and 10 fractional digits (SPEC §1.4), which takes 27
// characters; the bounds leave room for exponent notation and leading zeros
// while keeping the arithmetic of parsing trivially small.
const (
	// MaxText is the longest text Parse reads.
	MaxText = 64
	// MaxExponentDigits is the most significant digits of an exponent
	// (1e99 is read, 1e100 is not).
	MaxExponentDigits = 2
)

// ErrTooLarge reports a number whose text is longer than MaxText or whose
// exponent has more than MaxExponentDigits digits. It matches ErrSyntax
// too (errors.Is), since such a number is not one promoengine reads.
var ErrTooLarge = fmt.Errorf("%w: too long or too large an exponent", ErrSyntax)

// Parse reads a finite decimal such as "12", "-0.5" or "1.25e3". NaN,
// infinities, empty strings and surrounding spaces are refused, and so is
// any text longer than MaxText or with an exponent of more than
// MaxExponentDigits digits, before any big-number arithmetic: a JSON number
// 1e999999 or a million digits costs a scan of its text, not seconds of
// CPU. Negative zero ("-0", "-0.00") is read as zero: it is the same amount,
// and printed it would be a surprise ("-0" in a result line).
func Parse(s string) (Decimal, error) {
	var x Decimal
	if s == "" || strings.TrimSpace(s) != s {
		return x, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if tooLarge(s) {
		return x, ErrTooLarge
	}
	if _, _, err := x.d.SetString(s); err != nil {
		return x, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if x.d.Form != apd.Finite {
		return Decimal{}, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	x.unsign()
	return x, nil
}

// CheckText returns ErrTooLarge for text Parse would refuse as too long or
// with too large an exponent, looking at the text only; nil otherwise
// (which does not mean the text is a number).
func CheckText(s string) error {
	if tooLarge(s) {
		return ErrTooLarge
	}
	return nil
}

// tooLarge reports text over MaxText bytes or with an exponent of more than
// MaxExponentDigits significant digits, by looking at the text only.
func tooLarge(s string) bool {
	if len(s) > MaxText {
		return true
	}
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	exp := strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")
	return len(exp) > MaxExponentDigits
}

// MustParse is Parse for constants in code and tests; it panics on bad text.
func MustParse(s string) Decimal {
	x, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return x
}

// APD returns a pointer to a copy of the value, for APIs that take apd.
func (x Decimal) APD() *apd.Decimal {
	var a apd.Decimal
	a.Set(&x.d)
	return &a
}

// CopyTo sets a to the value, reusing a's storage: the allocation-free
// form of APD for a hot loop that keeps its apd.Decimal values.
func (x Decimal) CopyTo(a *apd.Decimal) { a.Set(&x.d) }

// String renders the value in plain notation (never exponent form). A zero
// never shows a sign: no Decimal holds a negative zero (see unsign).
func (x Decimal) String() string { return x.d.Text('f') }

// unsign turns a negative zero into zero. apd keeps the sign of a zero
// result (0 × -5 is -0, -0.001 rounded is -0.00); every constructor and
// operation here calls it, so that a zero prints "0", never "-0", and
// String stays small enough to inline.
func (x *Decimal) unsign() {
	if x.d.Negative && x.d.Coeff.Sign() == 0 {
		x.d.Negative = false
	}
}

// Fixed renders the value rounded half up to exactly places decimals, e.g.
// Fixed(2) of 5 is "5.00". This is how amounts go on the wire.
func (x Decimal) Fixed(places int32) string { return x.Round(places).String() }

// Cmp compares x and y: -1, 0 or +1.
func (x Decimal) Cmp(y Decimal) int { return x.d.Cmp(&y.d) }

// IsZero, Sign and the comparison helpers read naturally in rules code.
func (x Decimal) IsZero() bool             { return x.d.IsZero() }
func (x Decimal) Sign() int                { return x.d.Sign() }
func (x Decimal) Neg() Decimal             { var z Decimal; z.d.Neg(&x.d); z.unsign(); return z }
func (x Decimal) Equal(y Decimal) bool     { return x.Cmp(y) == 0 }
func (x Decimal) Less(y Decimal) bool      { return x.Cmp(y) < 0 }
func (x Decimal) LessEq(y Decimal) bool    { return x.Cmp(y) <= 0 }
func (x Decimal) Greater(y Decimal) bool   { return x.Cmp(y) > 0 }
func (x Decimal) GreaterEq(y Decimal) bool { return x.Cmp(y) >= 0 }

// IsInteger reports whether x has no fractional part.
func (x Decimal) IsInteger() bool {
	var frac, integ apd.Decimal
	x.d.Modf(&integ, &frac)
	return frac.IsZero()
}

// Places returns the number of digits after the decimal point as written
// (trailing zeros count: "1.50" has 2).
func (x Decimal) Places() int32 {
	if x.d.Exponent >= 0 {
		return 0
	}
	return -x.d.Exponent
}

// IntDigits returns the number of digits before the decimal point.
func (x Decimal) IntDigits() int64 {
	n := x.d.NumDigits() + int64(x.d.Exponent)
	if n < 1 {
		return 1
	}
	return n
}

func must(c apd.Condition, err error) {
	if err != nil {
		panic(fmt.Sprintf("dec: arithmetic trap: %v (%s)", err, c))
	}
}

// Add returns x + y.
func Add(x, y Decimal) Decimal { var z Decimal; must(ctx.Add(&z.d, &x.d, &y.d)); z.unsign(); return z }

// Sub returns x - y.
func Sub(x, y Decimal) Decimal { var z Decimal; must(ctx.Sub(&z.d, &x.d, &y.d)); z.unsign(); return z }

// Mul returns x × y.
func Mul(x, y Decimal) Decimal { var z Decimal; must(ctx.Mul(&z.d, &x.d, &y.d)); z.unsign(); return z }

// Quo returns x / y to 34 significant digits. y must not be zero.
func Quo(x, y Decimal) Decimal {
	if y.IsZero() {
		panic("dec: division by zero")
	}
	var z Decimal
	c, err := ctx.Quo(&z.d, &x.d, &y.d)
	if err != nil && c&^apd.Inexact&^apd.Rounded != 0 {
		must(c, err)
	}
	// 5/2 is 2.5, not 2.500…0 with 34 digits: drop the trailing zeros the
	// division pads with, so a quotient prints and compares as written.
	z.d.Reduce(&z.d)
	z.unsign()
	return z
}

// QuoInt returns floor(x / y) as an integer Decimal; y must be positive.
func QuoInt(x, y Decimal) Decimal {
	if y.Sign() <= 0 {
		panic("dec: QuoInt by a non-positive divisor")
	}
	return Quo(x, y).Floor(0)
}

// Sum adds all values.
func Sum(xs ...Decimal) Decimal {
	z := Zero
	for _, x := range xs {
		z = Add(z, x)
	}
	return z
}

// Min and Max return the smaller or larger of x and y (x on ties).
func Min(x, y Decimal) Decimal {
	if y.Less(x) {
		return y
	}
	return x
}
func Max(x, y Decimal) Decimal {
	if y.Greater(x) {
		return y
	}
	return x
}

func (x Decimal) quantize(places int32, mode apd.Rounder) Decimal {
	c := ctx
	c.Rounding = mode
	var z Decimal
	// Quantize needs room for the integer digits plus the places asked for.
	if need := uint32(x.IntDigits()) + uint32(max(places, 0)) + 2; need > c.Precision {
		c.Precision = need
	}
	cond, err := c.Quantize(&z.d, &x.d, -places)
	if err != nil && cond&^apd.Inexact&^apd.Rounded != 0 {
		must(cond, err)
	}
	z.unsign()
	return z
}

// Round rounds half up (away from zero on a tie) to places decimals. This is
// the rounding of SPEC §6 for money.
func (x Decimal) Round(places int32) Decimal { return x.quantize(places, apd.RoundHalfUp) }

// Floor rounds toward negative infinity to places decimals: how earned points
// are rounded down.
func (x Decimal) Floor(places int32) Decimal { return x.quantize(places, apd.RoundFloor) }

// Quantum returns the smallest step of a number with places decimals,
// e.g. 0.01 for 2.
func Quantum(places int32) Decimal {
	var z Decimal
	z.d.SetFinite(1, -places)
	return z
}

// MarshalJSON writes the value as a JSON string in plain notation.
func (x Decimal) MarshalJSON() ([]byte, error) {
	s := x.String()
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts a JSON string holding a decimal or a JSON number,
// read from its literal digits so that 0.1 is exactly one tenth.
func (x *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %s", ErrSyntax, b)
		}
		v, err := Parse(s)
		if err != nil {
			return err
		}
		*x = v
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return fmt.Errorf("%w: null", ErrSyntax)
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*x = v
	return nil
}

// MarshalText and UnmarshalText make Decimal work with YAML, envconfig and
// any text codec.
func (x Decimal) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Decimal) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*x = v
	return nil
}

// Scan reads a Postgres numeric (pgx hands it over as text for a
// sql.Scanner). NULL is refused: a nullable column scans into *Decimal.
func (x *Decimal) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return x.UnmarshalText([]byte(v))
	case []byte:
		return x.UnmarshalText(v)
	case int64:
		*x = FromInt(v)
		return nil
	case nil:
		return fmt.Errorf("%w: NULL", ErrSyntax)
	default:
		return fmt.Errorf("dec: cannot scan %T", src)
	}
}

// Value writes the decimal as text for a numeric parameter.
func (x Decimal) Value() (driver.Value, error) { return x.String(), nil }
