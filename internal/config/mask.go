package config

import (
	"fmt"
	"net/url"
	"strings"
)

// mask replaces a secret in printed text.
const mask = "***"

// MaskURL returns a URL or connection string with every credential hidden,
// for logs and error messages. It is the one function through which every
// PostgreSQL URL or key=value DSN, NATS URL (or comma-separated list of
// them) and Odoo URL is printed:
//
//   - the password of a URL's user info (postgres://promo:***@db/promo), and
//     the whole user info of a NATS URL without a password, which is a
//     token (nats://***@nats:4222);
//   - the value of every query parameter or key=value setting whose name
//     says it is a secret (password, sslpassword, passfile is kept since it
//     is a path; token, secret, key, api_key, …);
//   - a key=value string it cannot parse is hidden whole.
//
// It never fails: what it cannot read is masked rather than printed.
func MaskURL(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		return maskDSN(s)
	}
	parts := splitURLs(s)
	for i, p := range parts {
		parts[i] = maskOneURL(p)
	}
	return strings.Join(parts, ",")
}

// splitURLs splits a comma-separated list of URLs (NATS) without splitting
// one URL whose host list has commas (postgres://u@h1,h2/db).
func splitURLs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if len(out) > 0 && !strings.Contains(p, "://") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

func maskOneURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return maskDSN(s)
	}
	scheme, rest := s[:i], s[i+3:]
	query := ""
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest, query = rest[:q], rest[q:]
	}
	// The user info ends at the last '@' before the query: a password
	// typed with a raw '/' or '@' in it is still masked whole.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		switch {
		case hasPassword:
			rest = user + ":" + mask + rest[at:]
		case isNATSScheme(scheme):
			rest = mask + rest[at:] // a token
		}
	}
	return scheme + "://" + rest + maskQuery(query)
}

func isNATSScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

// maskQuery masks the values of secret parameters in "?a=b&c=d#f".
func maskQuery(q string) string {
	if q == "" || q[0] != '?' {
		return q
	}
	body, frag := q[1:], ""
	if h := strings.IndexByte(body, '#'); h >= 0 {
		body, frag = body[:h], body[h:]
	}
	params := strings.Split(body, "&")
	for i, p := range params {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && secretName(name) {
			params[i] = k + "=" + mask
		}
	}
	return "?" + strings.Join(params, "&") + frag
}

// secretName reports a setting whose value is a secret.
func secretName(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "passfile" {
		return false // a path
	}
	for _, w := range []string{"pass", "pwd", "secret", "token", "apikey", "api_key", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return n == "key" || n == "auth"
}

// maskDSN masks the secret values of a PostgreSQL key=value string
// ("host=db password='a b' user=promo"). Values may be single-quoted with
// backslash escapes. Text it cannot read as key=value pairs is hidden
// whole if it might hold a secret.
func maskDSN(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		// spaces
		j := i
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		b.WriteString(s[i:j])
		if j == len(s) {
			break
		}
		// key
		k := j
		for k < len(s) && s[k] != '=' && !isSpace(s[k]) {
			k++
		}
		key := s[j:k]
		eq := k
		for eq < len(s) && isSpace(s[eq]) {
			eq++
		}
		if eq == len(s) || s[eq] != '=' {
			return unreadable(s)
		}
		v := eq + 1
		for v < len(s) && isSpace(s[v]) {
			v++
		}
		end := v
		if end < len(s) && s[end] == '\'' {
			end++
			for end < len(s) && s[end] != '\'' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return unreadable(s)
			}
			end++
		} else {
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
		}
		b.WriteString(s[j:v])
		if secretName(key) {
			b.WriteString(mask)
		} else {
			b.WriteString(s[v:end])
		}
		i = end
	}
	return b.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unreadable hides text that is not key=value pairs when it could hold a
// secret; a plain host name or address is shown.
func unreadable(s string) string {
	if strings.ContainsAny(s, "=@'") || strings.Contains(strings.ToLower(s), "pass") {
		return mask + " (not shown: not a URL or key=value string)"
	}
	return s
}

// DatabaseURLError is the error for a PROMO_DATABASE_URL that PostgreSQL's
// driver cannot read. The driver's own error quotes the string with its
// password redacted only on a best-effort basis, so it is not passed on.
func DatabaseURLError(dsn string) error {
	return fmt.Errorf("PROMO_DATABASE_URL: %s is not a PostgreSQL URL or key=value string the driver can read", MaskURL(dsn))
}
