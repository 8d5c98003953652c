package graph

import (
	"context"
	"time"

	"github.com/graph-gophers/dataloader/v7"
	"golang.org/x/sync/errgroup"

	"referrals/storage"
)

// Loader tuning. Every nesting level that goes through a loader waits
// loaderWait once, so it is a latency floor per level. Pages do not rely on
// it (see PrefetchPage): it batches what a page cannot foresee, such as
// aliased referral(id) fields or the referrals of a participants page.
// loaderMaxBatch bounds one $in.
const (
	loaderWait     = 1 * time.Millisecond
	loaderMaxBatch = 1000
)

// requestLoaders batch and cache the reads of one GraphQL operation.
type requestLoaders struct {
	store BatchReader

	ReferralByID           *dataloader.Loader[string, *storage.Referral]
	ParticipantByID        *dataloader.Loader[string, *storage.Participant]
	ParticipantsByReferral *dataloader.Loader[string, []*storage.Participant]
	TagByKey               *dataloader.Loader[storage.TagKey, *storage.Tag]
}

// newLoaders returns fresh loaders over store.
func newLoaders(store BatchReader) *requestLoaders {
	return &requestLoaders{
		store:                  store,
		ReferralByID:           newLoader("ReferralByID", store.ReferralsByID),
		ParticipantByID:        newLoader("ParticipantByID", store.ParticipantsByID),
		ParticipantsByReferral: newLoader("ParticipantsByReferral", store.ParticipantsByReferral),
		TagByKey:               newLoader("TagByKey", store.TagsByKey),
	}
}

type loadersKey struct{}

// withLoaders returns ctx carrying l.
func withLoaders(ctx context.Context, l *requestLoaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// loadersOf returns the loaders of the operation running in ctx.
func loadersOf(ctx context.Context) *requestLoaders {
	return ctx.Value(loadersKey{}).(*requestLoaders)
}

// newLoader turns a batch read returning map[key]value into a loader whose
// results line up with its keys; a missing key yields the zero value (null).
// Its batches are traced under its name.
func newLoader[K comparable, V any](name string, fetch func(context.Context, []K) (map[K]V, error)) *dataloader.Loader[K, V] {
	batch := func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		ctx, end := traceBatch(ctx, name, len(keys))
		byKey, err := fetch(ctx, keys)
		end(err)
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
	loader := loadersOf(ctx).TagByKey
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

// loadTag loads the tag id of category c, or returns nil for a nil id.
func loadTag(ctx context.Context, c storage.TagCategory, id *string) (*storage.Tag, error) {
	if id == nil {
		return nil, nil
	}
	tags, err := loadTags(ctx, c, []string{*id})
	if err != nil {
		return nil, err
	}
	return tags[0], nil
}

// PrefetchPage reads, in one query each and concurrently, the participants
// and tags that the selection will ask of a page of referrals, and primes
// the loaders with them. A page then costs the same commands whatever its
// size, without depending on a batching window catching every key: on a
// busy machine resolving 100 nodes can outlast any short window.
func (l *requestLoaders) PrefetchPage(ctx context.Context, refs []*storage.Referral, want pageSelection) error {
	for _, r := range refs {
		l.ReferralByID.Prime(ctx, r.ID, r)
	}
	g, gctx := errgroup.WithContext(ctx)
	if want.participants {
		g.Go(func() error { return l.prefetchParticipants(gctx, refs) })
	}
	if want.tags {
		g.Go(func() error { return l.prefetchTags(gctx, refs) })
	}
	return g.Wait()
}

// prefetchParticipants reads the participants of a page the caller has
// read, so the store need not check again which referrals it sees.
func (l *requestLoaders) prefetchParticipants(ctx context.Context, refs []*storage.Referral) error {
	byReferral, err := l.store.ParticipantsOf(ctx, refs)
	if err != nil {
		return err
	}
	for _, r := range refs {
		l.ParticipantsByReferral.Prime(ctx, r.ID, byReferral[r.ID])
		for _, p := range byReferral[r.ID] {
			l.ParticipantByID.Prime(ctx, p.ID, p)
		}
	}
	return nil
}

func (l *requestLoaders) prefetchTags(ctx context.Context, refs []*storage.Referral) error {
	seen := map[storage.TagKey]bool{}
	var keys []storage.TagKey
	for _, r := range refs {
		if r.Details == nil {
			continue
		}
		for c, ids := range r.Details.Requirements.ByCategory() {
			for _, id := range ids {
				if k := (storage.TagKey{Category: c, ID: id}); !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	tags, err := l.store.TagsByKey(ctx, keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		l.TagByKey.Prime(ctx, k, tags[k]) // nil for an id missing from the catalog
	}
	return nil
}
