package graph

import (
	"os"
	"path/filepath"
	"testing"

	"referrals/graph/transport"
	"referrals/storage"
)

func TestPersistedOnly(t *testing.T) {
	e := newEnv(t, 4)
	registered := "{ referrals { totalCount } }"
	path := filepath.Join(t.TempDir(), "operations.json")
	if err := os.WriteFile(path, []byte(`["`+registered+`"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(e.store, e.broker, e.auth, Options{Manifest: manifest, PersistedOnly: true}, transport.Options{})
	secured := &env{handler: h}
	send := func(body map[string]any) gqlResponse { return secured.postBody(t, body) }
	byHash := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hashOf(registered)}}
	var d struct{ Referrals struct{ TotalCount int } }
	send(map[string]any{"extensions": byHash}).mustData(t, &d)
	send(map[string]any{"query": registered}).mustData(t, &d)
	if d.Referrals.TotalCount != 4 {
		t.Errorf("registered operation: %+v", d)
	}
	for name, body := range map[string]map[string]any{
		"ErrUnregisteredText": {"query": "{ tags { id } }"},
		"ErrUnknownHash":      {"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hashOf("{ tags { id } }")}}},
		"ErrRegisteringByAPQ": {"query": "{ tags { id } }", "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hashOf("{ tags { id } }")}}},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _ := send(body).code(t); code != string(storage.CodeForbidden) {
				t.Errorf("code %s, want FORBIDDEN", code)
			}
		})
	}
	t.Run("ErrManifestHashMismatch", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		_ = os.WriteFile(bad, []byte(`{"`+hashOf("x")+`": "{ tags { id } }"}`), 0o600)
		if _, err := LoadManifest(bad); err == nil {
			t.Error("a manifest whose hash is not its document's was accepted")
		}
	})
}
