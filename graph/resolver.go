// Package graph is the GraphQL layer: the gqlgen executor, resolvers,
// per-request loaders, scalars, operation limits, persisted operations,
// metrics, spans and the error presenter. Subscriptions read the broker
// of package live.
//
// It may import storage (for its types and error codes) and graph/transport
// (for the request id it logs), never the MongoDB driver: what it reads and
// writes goes through the small interfaces below, which *storage.Store
// implements and server.go wires.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"context"
	"time"

	"referrals/live"
	"referrals/storage"
)

// Resolver is the root resolver. It holds the store and the broker of
// live changes; per-request batching goes through the loaders in the
// request context.
type Resolver struct {
	Store  Store
	Broker *live.Broker
	// Hooks and Deliverer serve webhooks; nil where none are served.
	Hooks     WebhookStore
	Deliverer Deliverer
}

// Store is what the resolvers read and write.
type Store interface {
	BatchReader
	Referrals(ctx context.Context, f *storage.ReferralFilter, o *storage.ReferralOrder, args storage.PageArgs) (*storage.ReferralPage, error)
	CountPage(ctx context.Context, p *storage.ReferralPage) (int, error)
	Participants(ctx context.Context, f *storage.ParticipantFilter, args storage.PageArgs) (*storage.ParticipantPage, error)
	CountParticipants(ctx context.Context, f *storage.ParticipantFilter) (int, error)
	ReferralStats(ctx context.Context, q storage.StatsQuery) (*storage.ReferralStats, error)
	Tags(ctx context.Context, category *storage.TagCategory) ([]*storage.Tag, error)
	CreateReferral(ctx context.Context, in storage.ReferralInput) (*storage.Referral, error)
	UpdateReferral(ctx context.Context, id string, expectedVersion int64, patch storage.ReferralPatch) (*storage.Referral, error)
	ChangeReferralStatus(ctx context.Context, id string, expectedVersion int64, to storage.ReferralStatus, reason *string) (*storage.Referral, error)
	InviteParticipant(ctx context.Context, referralID string, in storage.InviteInput) (*storage.Participant, error)
	RespondToInvitation(ctx context.Context, id string, response storage.InvitationResponse) (*storage.Participant, error)
	// Now is the store's clock, which decides invitation expiry.
	Now() time.Time
}

// BatchReader is what the loaders read: records by key, many at a time,
// each returned map keyed like the request.
type BatchReader interface {
	ReferralsByID(ctx context.Context, ids []string) (map[string]*storage.Referral, error)
	ParticipantsByID(ctx context.Context, ids []string) (map[string]*storage.Participant, error)
	ParticipantsByReferral(ctx context.Context, referralIDs []string) (map[string][]*storage.Participant, error)
	ParticipantsOf(ctx context.Context, refs []*storage.Referral) (map[string][]*storage.Participant, error)
	TagsByKey(ctx context.Context, keys []storage.TagKey) (map[storage.TagKey]*storage.Tag, error)
}
