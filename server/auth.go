package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// apiKeys checks presented keys against the configured ones. Both sides are
// hashed first so that every comparison covers 32 bytes whatever the keys'
// lengths, and every configured key is compared without stopping at a match:
// neither the length nor the position of a key leaks through timing.
type apiKeys struct {
	digests [][32]byte
}

func newAPIKeys(keys []string) apiKeys {
	var k apiKeys
	for _, key := range keys {
		if key != "" {
			k.digests = append(k.digests, sha256.Sum256([]byte(key)))
		}
	}
	return k
}

func (k apiKeys) enabled() bool { return len(k.digests) > 0 }

func (k apiKeys) valid(presented string) bool {
	if presented == "" {
		return false
	}
	d := sha256.Sum256([]byte(presented))
	match := 0
	for _, want := range k.digests {
		match |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	return match == 1
}

// presentedKey reads the key from "Authorization: Bearer …" or "X-API-Key".
func presentedKey(authorization, xAPIKey string) string {
	if scheme, token, ok := strings.Cut(authorization, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return strings.TrimSpace(xAPIKey)
}
