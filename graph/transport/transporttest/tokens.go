// Package transporttest signs the bearer tokens tests send the HTTP edge
// (package transport). It is imported by tests only.
package transporttest

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Secret is the HS256 secret tests configure the edge with.
const Secret = "test-secret-of-enough-length"

// Token signs claims c with key by method, under the key id "k1".
func Token(t testing.TB, key any, method jwt.SigningMethod, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// HS signs claims c with Secret (HS256).
func HS(t testing.TB, c jwt.MapClaims) string {
	return Token(t, []byte(Secret), jwt.SigningMethodHS256, c)
}

// InAnHour is an expiry an hour from now, as a token's exp claim.
func InAnHour() int64 { return time.Now().Add(time.Hour).Unix() }

// Claims returns base with changes applied: a nil value removes its claim.
func Claims(base, changes jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{}
	for k, v := range base {
		c[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
