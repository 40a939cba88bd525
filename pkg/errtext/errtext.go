package errtext

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of error text.
const (
	// MaxQuoted is how many characters of a value a message quotes.
	MaxQuoted = 64
	// MaxMessage is the most bytes of one message (one violation, one
	// reason): a sentence and a few quoted values.
	MaxMessage = 512
	// MaxListed is how many items (violations, ids) a list shows before
	// "and N more".
	MaxListed = 20
)

const ellipsis = "…"

// Clip returns s cut to at most max bytes on a UTF-8 boundary, with "…"
// in place of what was cut (the result is then at most max bytes long, "…"
// included). A string that fits is returned as it is.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// Quote returns s as a Go-quoted string of at most MaxQuoted characters
// (control characters and invalid UTF-8 escaped); a longer value is cut and
// followed by its length: "abc…" (50000 bytes). It reads only the head of s,
// so quoting a megabyte costs what quoting 64 characters does.
func Quote(s string) string {
	head, cut := headRunes(s, MaxQuoted)
	if !cut {
		return strconv.Quote(s)
	}
	return strconv.Quote(head+ellipsis) + " (" + strconv.Itoa(len(s)) + " bytes)"
}

// headRunes returns the first n characters of s and whether s was longer.
func headRunes(s string, n int) (string, bool) {
	i := 0
	for count := 0; i < len(s); count++ {
		if count == n {
			return s[:i], true
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s, false
}

// Sprintf is fmt.Sprintf for messages about untrusted input: every string
// argument (and every value whose kind is string, such as an id type, and
// every fmt.Stringer) is cut to MaxQuoted characters before formatting, and
// the message to MaxMessage bytes. Use %q or %s as with fmt. An error
// argument is kept whole (its text is ours, already bounded) and only the
// message's overall bound applies to it.
func Sprintf(format string, args ...any) string {
	bounded := make([]any, len(args))
	for i, a := range args {
		bounded[i] = clipArg(a)
	}
	return Clip(fmt.Sprintf(format, bounded...), MaxMessage)
}

func clipArg(a any) any {
	switch v := a.(type) {
	case nil:
		return nil
	case string:
		return clipValue(v)
	case []byte:
		return clipValue(string(v))
	case fmt.Stringer:
		return clipValue(v.String())
	}
	if rv := reflect.ValueOf(a); rv.Kind() == reflect.String {
		return clipValue(rv.String())
	}
	return a
}

func clipValue(s string) string {
	head, cut := headRunes(s, MaxQuoted)
	if !cut {
		return s
	}
	return head + ellipsis
}

// List joins at most MaxListed of n items with sep, then says how many
// more there were: "a, b, c and 17 more". item(i) is called only for the
// items shown, each cut to MaxQuoted characters.
func List(n int, item func(i int) string, sep string) string {
	var b strings.Builder
	for i := 0; i < n && i < MaxListed; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(clipValue(item(i)))
	}
	if n > MaxListed {
		b.WriteString(" ")
		b.WriteString(More(n - MaxListed))
	}
	return b.String()
}

// Strings is List over a slice of strings.
func Strings(items []string, sep string) string {
	return List(len(items), func(i int) string { return items[i] }, sep)
}

// More is the text of the last entry of a cut list: "and 980 more".
func More(n int) string { return "and " + strconv.Itoa(n) + " more" }

// Header returns s as a header value (a NATS or HTTP header, one log
// field): line breaks and tabs become spaces (a multi-line message reads as
// one line, as net/http writes it), other control characters (NUL, ESC…)
// and invalid bytes are written as Go escapes, so that untrusted text can
// neither end the line nor hide in it; the result is cut to at most max
// bytes on a UTF-8 boundary.
func Header(s string, max int) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for i := 0; i < len(s) && b.Len() <= max; {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				fmt.Fprintf(&b, `\x%02x`, s[i])
			case r == '\r' || r == '\n' || r == '\t':
				b.WriteByte(' ')
			case unicode.IsControl(r):
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
			default:
				b.WriteString(s[i : i+size])
			}
			i += size
		}
		s = b.String()
	}
	return Clip(s, max)
}
