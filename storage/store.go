// Package storage is everything that talks to MongoDB: the documents, the
// queries and their indexes, the embedded FerretDB store and the demo data.
// It speaks the portable core of the MongoDB wire protocol that MongoDB,
// Atlas, FerretDB, DocumentDB and Cosmos DB share. It also holds what the
// API's layers share: the caller and its visibility rules, and the one set
// of error codes.
//
// It is the only package that imports the MongoDB driver and bson, and it
// imports nothing of this module: errors name fields in the domain's terms,
// never GraphQL's.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Store reads and writes referrals, participants and tags in one database.
type Store struct {
	client       *mongo.Client
	db           *mongo.Database
	referrals    *mongo.Collection
	participants *mongo.Collection
	tags         *mongo.Collection
	changes      *mongo.Collection
	changeHeads  *mongo.Collection
	claims       *mongo.Collection
	feed         *feed
	clock        func() time.Time
	logger       *slog.Logger
}

// Options configures Connect.
type Options struct {
	URI      string
	Database string
	// Monitor, when set, sees every command the driver sends.
	Monitor *event.CommandMonitor
	// Now is the clock of everything time-dependent: the times writes
	// record, invitation expiry and its sweep, claim lifetimes. time.Now
	// when nil; tests pass a clock they move.
	Now func() time.Time
	// Logger receives what the store cannot return to a caller (a change
	// it could not record, a feed it had to reopen). Nothing is logged when
	// nil.
	Logger *slog.Logger
}

// opTimeout bounds every operation of the client (the driver also sends it
// to the server as maxTimeMS, which stops a runaway query there).
const opTimeout = 30 * time.Second

// Connect opens a client for opts.URI and checks that the server answers.
func Connect(ctx context.Context, opts Options) (*Store, error) {
	co := options.Client().ApplyURI(opts.URI).SetTimeout(opTimeout)
	if opts.Monitor != nil {
		co.SetMonitor(opts.Monitor)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := newStore(client, opts.Database, opts.Now, opts.Logger)
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

func newStore(client *mongo.Client, database string, clock func() time.Time, logger *slog.Logger) *Store {
	db := client.Database(database)
	return &Store{
		clock:        clock,
		logger:       logger,
		client:       client,
		db:           db,
		referrals:    db.Collection("referrals"),
		participants: db.Collection("participants"),
		tags:         db.Collection("tags"),
		changes:      db.Collection("changes"),
		changeHeads:  db.Collection("changeHeads"),
		claims:       db.Collection("claims"),
		feed:         newFeed(),
	}
}

// WithDatabase returns a Store on another database of the same client,
// with the same clock and logger (tests use one database per test).
func (s *Store) WithDatabase(database string) *Store {
	return newStore(s.client, database, s.clock, s.logger)
}

// Now returns the store's time in UTC, truncated to what BSON dates keep.
func (s *Store) Now() time.Time { return s.clock().UTC().Truncate(time.Millisecond) }

// Close disconnects the client.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping MongoDB: %w", err)
	}
	return nil
}

// Ready checks that the store answers a query on the referrals collection.
// A ping is not enough: it never reaches the embedded store's SQLite
// files, so a store whose every query fails still answers it.
func (s *Store) Ready(ctx context.Context) error {
	err := s.referrals.FindOne(ctx, bson.D{{Key: "_id", Value: ""}}).Err()
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("query referrals: %w", err)
	}
	return nil
}

// Drop removes the whole database (tests clean up with it).
func (s *Store) Drop(ctx context.Context) error { return s.db.Drop(ctx) }

// Prepare readies the database for the API: the indexes, the change feed,
// the tag catalog and the periods statistics group by; and it finishes or undoes the writes a dead process
// left halfway (see RecoverWrites). It is idempotent and runs on every
// start.
func (s *Store) Prepare(ctx context.Context) error {
	if err := s.createIndexes(ctx); err != nil {
		return err
	}
	if err := s.prepareFeed(ctx); err != nil {
		return err
	}
	if err := s.loadCatalog(ctx); err != nil {
		return err
	}
	if err := s.backfillPeriods(ctx); err != nil {
		return err
	}
	return s.RecoverWrites(ctx)
}

// createIndexes creates the indexes the collections lack, the claims' TTL
// index included.
func (s *Store) createIndexes(ctx context.Context) error {
	for coll, models := range map[*mongo.Collection][]mongo.IndexModel{
		s.referrals:    referralIndexes(),
		s.participants: participantIndexes(),
		s.tags:         {{Keys: bson.D{{Key: "category", Value: 1}, {Key: "tagId", Value: 1}}}},
		s.claims:       {{Keys: bson.D{{Key: "pending", Value: 1}}}},
	} {
		if err := ensureIndexes(ctx, coll, models); err != nil {
			return err
		}
	}
	return s.expireClaims(ctx)
}

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
	}
}

// loadCatalog upserts the specification's tags, leaving other tags alone.
func (s *Store) loadCatalog(ctx context.Context) error {
	var writes []mongo.WriteModel
	for _, t := range Catalog() {
		writes = append(writes, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: TagKey{t.Category, t.ID}.docID()}}).
			SetReplacement(t).SetUpsert(true))
	}
	if _, err := s.tags.BulkWrite(ctx, writes); err != nil {
		return fmt.Errorf("load tag catalog: %w", err)
	}
	return nil
}
