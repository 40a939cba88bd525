package events

// CouponIssued is one code an order's issue_coupon program issued (SPEC
// §4, §6.10): ProgramID is the program the code redeems, IssuedBy the
// program that issued it.
type CouponIssued struct {
	Code       string `json:"code"`
	ProgramID  string `json:"program_id"`
	IssuedBy   string `json:"issued_by"`
	ValidUntil string `json:"valid_until"`
}

// CouponRef names a code and the program it redeems: a code an order used,
// or one a return or cancellation voided or made usable again.
type CouponRef struct {
	Code      string `json:"code"`
	ProgramID string `json:"program_id"`
}
