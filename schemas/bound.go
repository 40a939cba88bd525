package schemas

import (
	"strings"

	"github.com/promoengine/promoengine/pkg/errtext"
)

// maxPointer bounds the pointer of a violation as shown: a pointer is as
// long as the keys on its path, and a key may be a megabyte long.
const maxPointer = 256

// Bound returns the violations as an answer shows them: at most
// errtext.MaxListed, each pointer and message cut to a bounded length, and,
// when some were left out, a last entry with an empty pointer saying how
// many ("and 980 more"). vs itself is not changed.
func Bound(vs []Violation) []Violation {
	n := min(len(vs), errtext.MaxListed)
	out := make([]Violation, n, n+1)
	for i := range n {
		out[i] = bounded(vs[i])
	}
	if len(vs) > n {
		out = append(out, Violation{Message: errtext.More(len(vs) - n)})
	}
	return out
}

// Join writes at most max violations as "pointer: message; …" followed by
// "and N more" when some were left out, each cut like Bound cuts them. It is
// the text of an error holding violations.
func Join(vs []Violation, max int) string {
	var b strings.Builder
	for i, v := range vs {
		if i == max {
			b.WriteString(" ")
			b.WriteString(errtext.More(len(vs) - max))
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(bounded(v).String())
	}
	return b.String()
}

func bounded(v Violation) Violation {
	return Violation{Pointer: errtext.Clip(v.Pointer, maxPointer), Message: errtext.Clip(v.Message, errtext.MaxMessage)}
}
