package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// Manifest is the set of registered operations: documents by the hex
// SHA-256 of their text, the hash automatic persisted queries use.
type Manifest map[string]string

// LoadManifest reads a JSON file holding either an array of documents or
// an object of documents keyed by their SHA-256 (checked).
func LoadManifest(path string) (Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read persisted queries: %w", err)
	}
	m := Manifest{}
	var docs []string
	if json.Unmarshal(b, &docs) == nil {
		for _, d := range docs {
			m[hashOf(d)] = d
		}
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("persisted queries %s: want a JSON array of documents or an object of documents by SHA-256", path)
	}
	for h, d := range m {
		if hashOf(d) != h {
			return nil, fmt.Errorf("persisted queries %s: %s is not the SHA-256 of its document", path, h)
		}
	}
	return m, nil
}

func hashOf(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

// registeredOperations fills in registered documents sent by hash alone
// and, when only is set, refuses any operation that is not registered.
type registeredOperations struct {
	manifest Manifest
	only     bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = registeredOperations{}

func (registeredOperations) ExtensionName() string                   { return "RegisteredOperations" }
func (registeredOperations) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters runs before the persisted query cache.
func (r registeredOperations) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	hash := ""
	if pq, ok := p.Extensions["persistedQuery"].(map[string]any); ok {
		hash, _ = pq["sha256Hash"].(string)
	}
	if p.Query == "" && hash != "" {
		if doc, ok := r.manifest[hash]; ok {
			p.Query = doc
		}
	}
	if r.only {
		if _, ok := r.manifest[hashOf(p.Query)]; !ok || p.Query == "" {
			return codedError(storage.CodeForbidden, "this server runs registered operations only; this one is not registered")
		}
	}
	return nil
}

// Bounds of the automatic persisted query cache. Each scope (an
// organization; admins share one) has a partition of its own, bounded in
// documents and bytes, so that one partner sending many documents evicts
// only its own; at most apqScopes partitions are kept, the least recently
// used dropped whole. Real documents are a few kilobytes; a larger one
// still runs when sent in full, it is only not kept. In all the cache holds
// at most apqScopes × apqScopeBytes (32 MiB), as the one LRU before it.
const (
	apqScopes           = 32
	apqScopeDocuments   = 1000
	apqScopeBytes       = 1 << 20
	apqMaxDocumentBytes = 32 << 10
)

// automaticPersistedQueries is gqlgen's automatic persisted query
// extension with three changes: its cache is partitioned by organization
// (apqCache), which also keeps a hash-only request from telling a partner
// whether another organization ran a document; it keeps no document larger
// than apqMaxDocumentBytes; and its refusals carry the API's codes (a hash
// that does not match its document, or a malformed extension, is the
// client's mistake: BAD_USER_INPUT).
func automaticPersistedQueries() graphql.HandlerExtension {
	return apq{extension.AutomaticPersistedQuery{Cache: newAPQCache()}}
}

type apq struct {
	extension.AutomaticPersistedQuery
}

// MutateOperationParameters runs gqlgen's protocol and codes its errors.
func (a apq) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	err := a.AutomaticPersistedQuery.MutateOperationParameters(ctx, p)
	if err != nil && err.Extensions["code"] == nil {
		setCode(err, storage.CodeBadUserInput)
		err.Message = "extensions.persistedQuery: " + err.Message
	}
	return err
}

// apqCache keeps persisted queries in one partition per caller scope.
type apqCache struct {
	mu     sync.Mutex
	scopes *simplelru.LRU[string, *apqPartition]
}

// apqPartition is one scope's documents by hash, and their bytes.
type apqPartition struct {
	docs  *simplelru.LRU[string, string]
	bytes int
}

func newAPQCache() *apqCache {
	scopes, _ := simplelru.NewLRU[string, *apqPartition](apqScopes, nil) // cannot fail: size > 0
	return &apqCache{scopes: scopes}
}

func (c *apqCache) Get(ctx context.Context, hash string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.scopes.Get(apqScope(ctx))
	if !ok {
		return "", false
	}
	return p.docs.Get(hash)
}

func (c *apqCache) Add(ctx context.Context, hash, query string) {
	if len(query) > apqMaxDocumentBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	scope := apqScope(ctx)
	p, ok := c.scopes.Get(scope)
	if !ok {
		p = &apqPartition{}
		p.docs, _ = simplelru.NewLRU(apqScopeDocuments, func(_, doc string) { p.bytes -= len(doc) })
		c.scopes.Add(scope, p)
	}
	p.docs.Remove(hash) // a document added again is counted once
	p.docs.Add(hash, query)
	for p.bytes += len(query); p.bytes > apqScopeBytes; {
		p.docs.RemoveOldest()
	}
}

func apqScope(ctx context.Context) string {
	if caller := storage.CallerFrom(ctx); !caller.IsAdmin() {
		return "org:" + caller.OrganizationID + ":"
	}
	return "admin:"
}
