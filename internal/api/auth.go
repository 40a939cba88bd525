package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/promoengine/promoengine/internal/config"
)

// keyring holds the SHA-256 of every configured key, never the key.
type keyring struct {
	hashes [][sha256.Size]byte
	roles  []string
}

func newKeyring(keys config.APIKeys) keyring {
	k := keyring{}
	for _, key := range keys {
		if key.Key == "" {
			continue
		}
		k.hashes = append(k.hashes, sha256.Sum256([]byte(key.Key)))
		k.roles = append(k.roles, key.Role)
	}
	return k
}

// role returns the role of a presented key. Every configured key is
// compared, over equal-length digests, so the time taken does not depend
// on which key (if any) matches or how much of it.
func (k keyring) role(presented string) (string, bool) {
	if presented == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(presented))
	role, found := "", 0
	for i := range k.hashes {
		match := subtle.ConstantTimeCompare(sum[:], k.hashes[i][:])
		if match == 1 {
			role = k.roles[i]
		}
		found |= match
	}
	return role, found == 1
}

// allows says whether role may call a route that needs need. A webhook key
// calls only the webhook route, which a pos key may call too.
func allows(role, need string) bool {
	if need == config.RoleWebhook && role == config.RolePOS {
		return true
	}
	return role == config.RoleAdmin || (need == role && need != "")
}

// presentedKey is the bearer key of the request, or, where allowed, its
// ?token= parameter.
func presentedKey(r *http.Request, queryToken bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key)
		}
		return ""
	}
	if queryToken {
		return r.URL.Query().Get("token")
	}
	return ""
}
