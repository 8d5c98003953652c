package graph

import (
	"context"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"referrals/storage"
)

// Loader tuning. Every nesting level of a query waits loaderWait once, so
// it is a latency floor per level; gqlgen starts sibling resolvers
// concurrently, so a short wait already gathers a whole page's keys (see
// BenchmarkNestedPage). loaderMaxBatch bounds one $in; it exceeds the keys a
// page of MaxPageSize can produce, so a page never needs a second batch.
const (
	loaderWait     = 250 * time.Microsecond
	loaderMaxBatch = 1000
)

// Loaders batch and cache the reads of one GraphQL operation.
type Loaders struct {
	ReferralByID           *dataloader.Loader[string, *storage.Referral]
	ParticipantByID        *dataloader.Loader[string, *storage.Participant]
	ParticipantsByReferral *dataloader.Loader[string, []*storage.Participant]
	TagByKey               *dataloader.Loader[storage.TagKey, *storage.Tag]
}

// NewLoaders returns fresh loaders over store.
func NewLoaders(store *storage.Store) *Loaders {
	return &Loaders{
		ReferralByID:           newLoader(store.ReferralsByID),
		ParticipantByID:        newLoader(store.ParticipantsByID),
		ParticipantsByReferral: newLoader(store.ParticipantsByReferral),
		TagByKey:               newLoader(store.TagsByKey),
	}
}

type loadersKey struct{}

// WithLoaders returns ctx carrying l.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// For returns the loaders of the operation running in ctx.
func For(ctx context.Context) *Loaders {
	return ctx.Value(loadersKey{}).(*Loaders)
}

// newLoader turns a batch read returning map[key]value into a loader whose
// results line up with its keys; a missing key yields the zero value (null).
func newLoader[K comparable, V any](fetch func(context.Context, []K) (map[K]V, error)) *dataloader.Loader[K, V] {
	batch := func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		byKey, err := fetch(ctx, keys)
		out := make([]*dataloader.Result[V], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[V]{Data: byKey[k], Error: err}
		}
		return out
	}
	return dataloader.NewBatchedLoader(batch,
		dataloader.WithWait[K, V](loaderWait),
		dataloader.WithBatchCapacity[K, V](loaderMaxBatch))
}

// loadTags returns the tags of one requirement category in stored order. A
// stored id missing from the catalog still shows, named by its id, so no
// requirement is hidden. It queues every key before waiting on any (which
// LoadMany would do with a goroutine per key).
func loadTags(ctx context.Context, c storage.TagCategory, ids []string) ([]*storage.Tag, error) {
	loader := For(ctx).TagByKey
	thunks := make([]dataloader.Thunk[*storage.Tag], len(ids))
	for i, id := range ids {
		thunks[i] = loader.Load(ctx, storage.TagKey{Category: c, ID: id})
	}
	tags := make([]*storage.Tag, len(ids))
	for i, thunk := range thunks {
		t, err := thunk()
		if err != nil {
			return nil, err
		}
		if t == nil {
			t = &storage.Tag{ID: ids[i], Category: c, Name: ids[i]}
		}
		tags[i] = t
	}
	return tags, nil
}
