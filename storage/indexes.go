package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// missingCollections returns which of colls do not exist yet.
func (s *Store) missingCollections(ctx context.Context, colls ...*mongo.Collection) (map[*mongo.Collection]bool, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	missing := map[*mongo.Collection]bool{}
	for _, c := range colls {
		missing[c] = !slices.Contains(names, c.Name())
	}
	return missing, nil
}

// createIndexes creates the collections and the indexes they lack, the
// claims' TTL index included. A store that answers only {_id: v} from an
// index gets no other: it would update them on every write and never
// read them. There the collections are created explicitly, so that they
// exist for embedded.Server.IndexIDs.
func (s *Store) createIndexes(ctx context.Context) error {
	models := map[*mongo.Collection][]mongo.IndexModel{
		s.referrals:    referralIndexes(),
		s.participants: participantIndexes(),
		s.tags:         {{Keys: bson.D{{Key: "category", Value: 1}, {Key: "tagId", Value: 1}}}},
		s.due:          {{Keys: bson.D{{Key: "due", Value: 1}}}},
		s.pending:      {{Keys: bson.D{{Key: "at", Value: 1}}}},
		s.webhooks:     {{Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "createdDateTime", Value: 1}, {Key: "_id", Value: 1}}}},
		s.deliveries: {
			{Keys: bson.D{{Key: "webhookId", Value: 1}, {Key: "createdDateTime", Value: -1}, {Key: "_id", Value: -1}}},
			{Keys: bson.D{{Key: "webhookId", Value: 1}, {Key: "nextAttemptAt", Value: 1}, {Key: "_id", Value: 1}}},
		},
	}
	if s.pushdown == PushdownIDOnly {
		// Only the missing ones: creating one that exists is a failed
		// command in /metrics (six at every start, which an operator
		// watching failures would chase).
		colls := []*mongo.Collection{s.claims}
		for coll := range models {
			colls = append(colls, coll)
		}
		missing, err := s.missingCollections(ctx, colls...)
		if err != nil {
			return err
		}
		for _, coll := range colls {
			if !missing[coll] {
				continue
			}
			if err := s.createCollection(ctx, coll); err != nil {
				return err
			}
		}
		return nil
	}
	for coll, m := range models {
		if err := ensureIndexes(ctx, coll, m); err != nil {
			return err
		}
	}
	return s.expireClaims(ctx)
}

// createCollection creates coll unless it exists.
func (s *Store) createCollection(ctx context.Context, coll *mongo.Collection) error {
	err := s.db.CreateCollection(ctx, coll.Name())
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == codeNamespaceExists) {
		return fmt.Errorf("create the %s collection: %w", coll.Name(), err)
	}
	return nil
}

// codeNamespaceExists is the server error code for creating a collection
// that exists.
const codeNamespaceExists = 48

// ensureIndexes creates the indexes of models that coll lacks. Asking only
// for the missing ones saves work on every start, and FerretDB v1.24 drops
// the connection when one createIndexes names only existing indexes.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, models []mongo.IndexModel) error {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list indexes on %s: %w", coll.Name(), err)
	}
	existing := map[string]bool{}
	for _, s := range specs {
		existing[s.Name] = true
	}
	var missing []mongo.IndexModel
	for _, m := range models {
		if !existing[indexName(m.Keys.(bson.D))] {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := coll.Indexes().CreateMany(ctx, missing); err != nil {
		return fmt.Errorf("create indexes on %s: %w", coll.Name(), err)
	}
	return nil
}

// indexName is the name MongoDB gives an index by default: "a_1_b_-1".
func indexName(keys bson.D) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s_%v", k.Key, k.Value))
	}
	return strings.Join(parts, "_")
}

// referralIndexes serves every filter and order of ReferralFilter and
// ReferralOrder. Sort fields are paired with _id, the tie-breaker.
func referralIndexes() []mongo.IndexModel {
	var models []mongo.IndexModel
	for _, f := range referralSortFields {
		models = append(models, mongo.IndexModel{Keys: bson.D{{Key: f, Value: 1}, {Key: "_id", Value: 1}}})
	}
	paths := []string{
		"status", "referralSource", "customerProfile.address.country",
		"participation.organizationId", "participation.status", "participation.participantId",
	}
	for _, f := range requirementFields {
		paths = append(paths, "details.requirements."+f.name)
	}
	for _, p := range paths {
		models = append(models, mongo.IndexModel{Keys: bson.D{{Key: p, Value: 1}}})
	}
	return models
}

func participantIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "referralId", Value: 1}}},
		{Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "createdDateTime", Value: -1}, {Key: "_id", Value: -1}}},
		{Keys: bson.D{{Key: "createdDateTime", Value: -1}, {Key: "_id", Value: -1}}},
		{Keys: bson.D{{Key: "expirationDateTime", Value: 1}, {Key: "referralId", Value: 1}}},
	}
}

// indexOpenWork fills invitationDue and pendingWrites when this Prepare
// created them (fresh) on a database that may hold data written before
// they existed: its open invitations and pending claims. On a database
// without such data it reads two empty collections.
func (s *Store) indexOpenWork(ctx context.Context, fresh map[*mongo.Collection]bool) error {
	if fresh[s.due] {
		if err := s.markOpenInvitations(ctx); err != nil {
			return err
		}
	}
	if fresh[s.pending] {
		return s.markPendingClaims(ctx)
	}
	return nil
}
