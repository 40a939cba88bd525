package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// APIKey is one configured bearer key with the role and stores it grants.
type APIKey struct {
	Key   string
	Role  string
	Scope Scope
}

// Keyring checks presented API keys. It holds the SHA-256 of every key,
// never the key: the presented key is hashed too, so every comparison runs
// over 32 bytes whatever the lengths, and every configured key is compared,
// so the time taken says nothing about which key nearly matched.
type Keyring struct {
	hashes     [][sha256.Size]byte
	principals []Principal
}

// NewKeyring builds a keyring; keys with an empty Key are skipped.
func NewKeyring(keys []APIKey) *Keyring {
	k := &Keyring{}
	for _, key := range keys {
		if key.Key == "" {
			continue
		}
		k.hashes = append(k.hashes, sha256.Sum256([]byte(key.Key)))
		k.principals = append(k.principals, Principal{Kind: KindAPIKey, Subject: Fingerprint(key.Key), Role: key.Role, Scope: key.Scope})
	}
	return k
}

// Lookup returns the principal of a presented key.
func (k *Keyring) Lookup(presented string) (Principal, bool) {
	if presented == "" || k == nil {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	found, at := 0, 0
	for i := range k.hashes {
		match := subtle.ConstantTimeCompare(sum[:], k.hashes[i][:])
		at = subtle.ConstantTimeSelect(match, i, at)
		found |= match
	}
	if found != 1 {
		return Principal{}, false
	}
	return k.principals[at], true
}

// Fingerprint names a secret without revealing it: the first 4 bytes of its
// SHA-256 ("sha256:1a2b3c4d"), as the start-up log shows the keys loaded.
// Keys must be random (128 bits or more): a fingerprint of a guessable key
// lets whoever reads it test guesses offline.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("sha256:%x", sum[:4])
}
