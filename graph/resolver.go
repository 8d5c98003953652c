// Package graph is the GraphQL layer: the gqlgen executor, resolvers,
// per-request loaders, scalars and the HTTP handler around them.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"referrals/storage"
)

// Resolver is the root resolver. It holds the store and the broker of
// live changes; per-request batching goes through the loaders in the
// request context.
type Resolver struct {
	Store  *storage.Store
	Broker *Broker
}
