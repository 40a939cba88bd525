package rules

import (
	"fmt"
	"strings"
	"time"
)

// CouponIssued is the one value of when.coupon: the program is redeemable
// only with a code the engine issued for it (SPEC §6.10).
const CouponIssued = "issued"

// IssueCoupon is the issue_coupon reward: one single-use code for Program,
// valid for ValidDays days from the order's occurred_at.
type IssueCoupon struct {
	Program   string // a program with when.coupon: issued
	ValidDays int
}

// Coupon is a code the engine issued, as the ledger knows it before the
// order: the ledger passes, in Input.Coupons, the customer's coupons whose
// code the order presents.
type Coupon struct {
	Code       string // normalized (NormalizeCouponCode)
	ProgramID  string // the program it redeems
	ValidFrom  time.Time
	ValidUntil time.Time // exclusive
	UsedBy     string    // the order that used it; "" while unused
	Voided     bool      // its issuing order was returned or cancelled
}

// IssuedCoupon is a coupon an applied issue_coupon program gives; the
// ledger derives its code.
type IssuedCoupon struct {
	IssuedBy   string // the issuing program
	ProgramID  string // the program the code redeems
	ValidFrom  time.Time
	ValidUntil time.Time
}

// UsedCoupon is a coupon an applied when.coupon: issued program uses.
type UsedCoupon struct {
	Code      string
	ProgramID string
}

// NormalizeCouponCode is how a presented code is compared with issued
// ones: upper case, without spaces and hyphens, and with the letters
// Crockford base32 reads as digits (O as 0, I and L as 1), so that a code
// read aloud or typed from a receipt still matches.
func NormalizeCouponCode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CouponValidUntil is the end of a coupon issued at t for days days: t plus
// days on the catalog's calendar (as expiry days are counted), exclusive.
func (c *Catalog) CouponValidUntil(t time.Time, days int) time.Time {
	return t.In(c.location()).AddDate(0, 0, days)
}

// CouponIssuer returns the first program with an issue_coupon reward, or
// nil: a catalog with one needs the coupon secret to run.
func (c *Catalog) CouponIssuer() *Program {
	for _, p := range c.Programs {
		if p.Reward.Kind == RewardIssueCoupon {
			return p
		}
	}
	return nil
}

// Program returns the program with the given id, or nil.
func (c *Catalog) Program(id string) *Program {
	for _, p := range c.Programs {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// couponIneligible says why no presented code lets the order use program p
// ("" when one does, remembered in e.coupon). Codes are tried in the order
// presented; the reason is about the first one issued for p, or says none
// was.
func (e *evaluation) couponIneligible(p *Program) string {
	e.coupon = ""
	if e.in.Customer == nil {
		return "anonymous orders hold no coupon"
	}
	why := ""
	for _, presented := range e.in.Order.CouponCodes {
		code := NormalizeCouponCode(presented)
		for i := range e.in.Coupons {
			cp := &e.in.Coupons[i]
			if cp.Code != code || cp.ProgramID != p.ID {
				continue
			}
			var problem string
			switch at := e.in.OccurredAt; {
			case cp.UsedBy != "":
				problem = "coupon " + code + " is already used (order " + cp.UsedBy + ")"
			case cp.Voided:
				problem = "coupon " + code + " is void: the order that earned it was returned or cancelled"
			case at.Before(cp.ValidFrom):
				problem = "coupon " + code + " is valid from " + cp.ValidFrom.In(e.c.location()).Format(time.RFC3339)
			case !at.Before(cp.ValidUntil):
				problem = "coupon " + code + " expired at " + cp.ValidUntil.In(e.c.location()).Format(time.RFC3339)
			default:
				e.coupon = code
				return ""
			}
			if why == "" {
				why = problem
			}
		}
	}
	if why == "" {
		why = fmt.Sprintf("no coupon issued for %s presented", p.ID)
	}
	return why
}

// issueReason is the trace reason of an issue_coupon program.
func issueReason(ic *IssueCoupon) string {
	return fmt.Sprintf("issues a coupon for %s, valid %d days", ic.Program, ic.ValidDays)
}
