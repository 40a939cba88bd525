package rules

import (
	"slices"

	"github.com/cockroachdb/apd/v3"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Allocate splits total over weights in proportion, in whole units of the
// money quantum (10^-places), by largest remainder: every share is first
// floor(total × weight / Σweights) to the quantum, then the quanta left over
// go one each to the shares with the largest remainders, ties to the earlier
// weight. The shares sum exactly to total (rounded half up to places first,
// should it carry more decimals) and none exceeds its exact proportion by a
// quantum or more, so when total ≤ Σweights and every weight is at most its
// line's net (a multiple of the quantum), no line is pushed below zero.
//
// The arithmetic is on integers — every number scaled to the smallest
// exponent among them — so the remainders compare exactly: a tie is a real
// tie, not two quotients that happen to agree to 34 digits. It is also what
// keeps the hot path of Evaluate cheap.
//
// Negative and zero weights get nothing. When no weight is positive, or
// total is not positive, every share is zero.
//
// The result has one share per weight, each with exactly places decimals.
// The ledger reuses it to split amounts of returns the same way.
func Allocate(total dec.Decimal, weights []dec.Decimal, places int32) []dec.Decimal {
	var s allocScratch
	return s.allocate(total, weights, places)
}

// allocScratch holds the buffers of Allocate so that an evaluation, which
// allocates once per applied program, reuses them.
type allocScratch struct {
	shares []dec.Decimal
	parts  []allocPart
	order  []*allocPart
	total  apd.Decimal
}

// allocPart is a positive weight of an allocation.
type allocPart struct {
	i        int
	w        apd.Decimal
	q, rem   apd.BigInt // share in quanta, and the remainder of the division
	rounding bool
}

// allocate is Allocate into the scratch buffers: the shares it returns are
// valid until its next call.
func (s *allocScratch) allocate(total dec.Decimal, weights []dec.Decimal, places int32) []dec.Decimal {
	shares := slices.Grow(s.shares[:0], len(weights))[:len(weights)]
	s.shares = shares
	zero := fixed(dec.Zero, places)
	for i := range shares {
		shares[i] = zero
	}
	t := &s.total
	fixed(total, places).CopyTo(t)
	if t.Sign() <= 0 {
		return shares
	}

	// The positive weights, and the smallest exponent of all numbers: each
	// becomes an integer count of 10^e.
	parts := s.parts[:0]
	defer func() { s.parts = parts[:0] }()
	e := min(-places, t.Exponent)
	for i, w := range weights {
		if w.Sign() > 0 {
			parts = append(parts, allocPart{i: i})
			a := &parts[len(parts)-1].w
			w.CopyTo(a)
			e = min(e, a.Exponent)
		}
	}
	switch len(parts) {
	case 0:
		return shares
	case 1:
		shares[parts[0].i] = dec.FromAPD(t)
		return shares
	}
	var sum apd.BigInt
	for k := range parts {
		w := &parts[k].w
		scaleTo(&w.Coeff, w.Exponent, e)
		sum.Add(&sum, &w.Coeff)
	}
	// share_k = floor(T × W_k / (S × Q)) quanta, where Q = 10^(-places-e) is
	// the quantum in units of 10^e; the remainder decides who gets the
	// quanta left over.
	T := &t.Coeff
	scaleTo(T, t.Exponent, e)
	quantum := pow10(-places - e)
	var divisor, given, n apd.BigInt
	divisor.Mul(&sum, quantum)
	for k := range parts {
		p := &parts[k]
		n.Mul(T, &p.w.Coeff)
		p.q.QuoRem(&n, &divisor, &p.rem)
		given.Add(&given, &p.q)
	}
	// left = total in quanta − Σ floors: the number of remainders that
	// round up. It is below the number of non-zero remainders, since each
	// remainder is under one quantum and together they make left quanta.
	var left apd.BigInt
	left.Quo(T, quantum)
	left.Sub(&left, &given)
	if k := left.Int64(); k > 0 {
		order := s.order[:0]
		for j := range parts {
			order = append(order, &parts[j])
		}
		s.order = order
		slices.SortStableFunc(order, func(a, b *allocPart) int { return b.rem.Cmp(&a.rem) })
		for _, p := range order[:min(k, int64(len(order)))] {
			p.rounding = true
		}
	}
	for k := range parts {
		p := &parts[k]
		if p.rounding {
			p.q.Add(&p.q, bigOne)
		}
		var share apd.Decimal
		share.Coeff.Set(&p.q)
		share.Exponent = -places
		shares[p.i] = dec.FromAPD(&share)
	}
	return shares
}

// bigOne is 1, only ever read.
var bigOne = apd.NewBigInt(1)

// scaleTo rewrites a coefficient of exponent from as one of exponent to
// (to ≤ from): c × 10^(from−to).
func scaleTo(c *apd.BigInt, from, to int32) {
	if from > to {
		c.Mul(c, pow10(from-to))
	}
}

var ten = apd.NewBigInt(10)

// pow10 returns 10^n (n ≥ 0) as a fresh BigInt.
func pow10(n int32) *apd.BigInt {
	if n < 19 {
		p := int64(1)
		for range n {
			p *= 10
		}
		return apd.NewBigInt(p)
	}
	var z apd.BigInt
	return z.Exp(ten, apd.NewBigInt(int64(n)), nil)
}
