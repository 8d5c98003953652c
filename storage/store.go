// Package storage is the referrals in MongoDB: the documents, their
// validation, the queries and their indexes, the writes and the recovery
// of those a crash cut short, the change feed's content, statistics,
// imports and webhooks' records. It speaks the portable
// core of the MongoDB wire protocol that MongoDB, Atlas, FerretDB,
// DocumentDB and Cosmos DB share. It also holds what the API's layers
// share: the caller and its visibility rules, and the one set of error
// codes.
//
// Of this module it imports only its own subpackages, which know nothing
// of referrals: changelog (the change log), embedded (the embedded store
// and its read planner) and retry. With them it is the only code that
// talks to the database (storagetest, for tests, aside; the webhook
// deliverer hands SetWebhookState a bson update, and live measures a
// change as bson): errors name fields in the domain's terms, never
// GraphQL's.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/trace"

	"referrals/storage/changelog"
	"referrals/storage/embedded"
)

// Store reads and writes referrals, participants and tags in one database.
type Store struct {
	client       *mongo.Client
	db           *mongo.Database
	referrals    *mongo.Collection
	participants *mongo.Collection
	tags         *mongo.Collection
	changes      *mongo.Collection // the change log's, for tests and its reads by _id
	claims       *mongo.Collection
	log          *changeLog
	// keys holds the server's secrets; eventIDs is made from one of them.
	keys     *mongo.Collection
	eventIDs *EventIDs
	// due and pending index the open work that background jobs look for,
	// keyed by _id, so that finding it never reads a large collection:
	// the invitations not yet answered (invitationDue) and the writes of
	// several documents not yet complete (pendingWrites).
	due     *mongo.Collection
	pending *mongo.Collection
	// webhooks and their deliveries (see webhooks.go).
	webhooks   *mongo.Collection
	deliveries *mongo.Collection
	// pushdown is what Prepare found the store answers from an index, or
	// what Options forced.
	pushdown Pushdown
	// planner answers selections with SQL on the embedded store, where
	// FerretDB would read every document (nil elsewhere).
	planner *embedded.Planner
	opts    Options
	clock   func() time.Time
	logger  *slog.Logger
	// step, set by tests only, runs at named steps of the write path
	// (see reach), where a test cuts it as a crash would.
	step func(step string)
}

// Options configures Connect.
type Options struct {
	URI      string
	Database string
	// Monitor, when set, sees every command the driver sends.
	Monitor *event.CommandMonitor
	// Tracing, when set, records each command sent within a traced
	// request as a span (see commandSpans); nil traces nothing and costs
	// nothing.
	Tracing trace.TracerProvider
	// Now is the clock of everything time-dependent: the times writes
	// record, invitation expiry and its sweep, claim lifetimes. time.Now
	// when nil; tests pass a clock they move.
	Now func() time.Time
	// ConnectTimeout bounds how long Connect waits for the server to
	// answer; no bound but the operation timeout when zero.
	ConnectTimeout time.Duration
	// Logger receives what the store cannot return to a caller (a change
	// it could not record, a feed it had to reopen). Nothing is logged when
	// nil.
	Logger *slog.Logger
	// Pushdown, unless PushdownDetect, replaces what Prepare would detect,
	// so that tests run either way of reading on the embedded store.
	Pushdown Pushdown
	// Embedded is the embedded store the client talks to, if it does:
	// Prepare then makes its lookups by _id use an index (see
	// embedded.Server.IndexIDs) and opens its read planner.
	Embedded *embedded.Server
}

// Pushdown says which queries a store answers from an index rather than
// by reading every document of the collection.
type Pushdown string

// The kinds of store, as far as the code cares.
const (
	// PushdownDetect asks the store at Prepare (the zero value).
	PushdownDetect Pushdown = ""
	// PushdownIndexed stores (MongoDB) answer filters on indexed fields,
	// a list of ids ($in) included, from their indexes.
	PushdownIndexed Pushdown = "indexed"
	// PushdownIDOnly stores (FerretDB v1 on SQLite) answer only a filter
	// that is exactly {_id: value} from an index; any other filter reads
	// and decodes the whole collection. Point operations then go by _id
	// alone and check the rest on the document read; batched reads by id
	// are point reads (see idOnly).
	PushdownIDOnly Pushdown = "id-only"
)

// opTimeout bounds every operation of the client (the driver also sends it
// to the server as maxTimeMS, which stops a runaway query there).
const opTimeout = 30 * time.Second

// Connect opens a client for opts.URI and checks that the server answers.
func Connect(ctx context.Context, opts Options) (*Store, error) {
	co := options.Client().ApplyURI(opts.URI).SetTimeout(opTimeout)
	monitor := opts.Monitor
	if opts.Tracing != nil {
		monitor = traceCommands(opts.Tracing, monitor)
	}
	if monitor != nil {
		co.SetMonitor(monitor)
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
	s := newStore(client, opts)
	pingCtx, cancel := ctx, context.CancelFunc(func() {})
	if opts.ConnectTimeout > 0 {
		pingCtx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
	}
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		_ = client.Disconnect(context.Background())
		if ctx.Err() == nil && pingCtx.Err() != nil {
			return nil, fmt.Errorf("MongoDB at %s did not answer within %s: check that it runs and is reachable from here, and the URI's host, port and credentials: %w",
				RedactURI(opts.URI), opts.ConnectTimeout, err)
		}
		return nil, err
	}
	return s, nil
}

// RedactURI is uri without its user name and password, for logs and
// errors; a URI it cannot read is replaced whole.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(a MongoDB URI that cannot be read)"
	}
	u.User = nil
	return u.String()
}

func newStore(client *mongo.Client, opts Options) *Store {
	db := client.Database(opts.Database)
	s := &Store{
		opts:         opts,
		clock:        opts.Now,
		logger:       opts.Logger,
		pushdown:     opts.Pushdown,
		client:       client,
		db:           db,
		referrals:    db.Collection("referrals"),
		participants: db.Collection("participants"),
		tags:         db.Collection("tags"),
		changes:      db.Collection(changelog.Collection),
		claims:       db.Collection("claims"),
		keys:         db.Collection("keys"),
		due:          db.Collection("invitationDue"),
		pending:      db.Collection("pendingWrites"),
		webhooks:     db.Collection("webhooks"),
		deliveries:   db.Collection("webhookDeliveries"),
	}
	s.log = changelog.New[Change, *Change](changelog.Options[Change]{DB: db, Now: s.Now, Logger: s.logger,
		ReadKeys: s.changesByKey, BeforeHead: func() { s.reach(stepHead) }})
	return s
}

// WithDatabase returns a Store on another database of the same client,
// with the same options otherwise (tests use one database per test).
func (s *Store) WithDatabase(database string) *Store {
	opts := s.opts
	opts.Database = database
	return newStore(s.client, opts)
}

// Database is the name of the store's database.
func (s *Store) Database() string { return s.db.Name() }

// Now returns the store's time in UTC, truncated to what BSON dates keep.
func (s *Store) Now() time.Time { return s.clock().UTC().Truncate(time.Millisecond) }

// Pushdown returns what the store answers from an index, as Prepare found
// it (or as Options forced it).
func (s *Store) Pushdown() Pushdown { return s.pushdown }

// Close disconnects the client.
func (s *Store) Close(ctx context.Context) error {
	s.closePlanner()
	return s.client.Disconnect(ctx)
}

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
func (s *Store) Drop(ctx context.Context) error {
	s.closePlanner()
	return s.db.Drop(ctx)
}

// Prepare readies the database for the API: what the store answers from
// an index, the collections and their indexes, the change feed and its
// event id secret, the tag catalog and the periods statistics group by;
// and it finishes or undoes the writes a dead process left halfway and
// publishes their changes (see RecoverWrites). It is idempotent and runs on every start;
// it reads every participant and claim only once, the first time a
// database meets this version (see indexOpenWork).
func (s *Store) Prepare(ctx context.Context) error {
	if s.pushdown == PushdownDetect {
		s.pushdown = s.detectPushdown(ctx)
	}
	fresh, err := s.missingCollections(ctx, s.due, s.pending)
	if err != nil {
		return err
	}
	if err := s.createIndexes(ctx); err != nil {
		return err
	}
	if err := s.log.Prepare(ctx); err != nil {
		return err
	}
	if err := s.loadEventIDs(ctx); err != nil {
		return err
	}
	if s.opts.Embedded != nil {
		if err := s.opts.Embedded.IndexIDs(ctx, s.db.Name()); err != nil {
			return err
		}
		if s.idOnly() && s.planner == nil {
			if err := s.openPlanner(ctx); err != nil {
				return err
			}
		}
	}
	if err := s.loadCatalog(ctx); err != nil {
		return err
	}
	if err := s.backfillPeriods(ctx); err != nil {
		return err
	}
	if err := s.indexOpenWork(ctx, fresh); err != nil {
		return err
	}
	if s.opts.Embedded != nil {
		// The embedded store is this process's: no other process writes to
		// it before this one serves it, so every unfinished write in it is
		// a dead process's, and recovering them now gives their changes
		// at once rather than abandonedAfter later.
		return s.recoverWrites(ctx, s.Now())
	}
	return s.RecoverWrites(ctx)
}

// detectPushdown asks the store how it would find referrals by a list of
// ids. FerretDB says whether it pushed the filter down to its storage
// (filterPushdown, its extension of explain); MongoDB shows its plan, a
// collection scan (COLLSCAN) when no index serves. A store that answers
// neither is taken to be indexed, the way that is right on every store.
func (s *Store) detectPushdown(ctx context.Context) Pushdown {
	var reply bson.Raw
	err := s.db.RunCommand(ctx, bson.D{
		{Key: "explain", Value: bson.D{
			{Key: "find", Value: s.referrals.Name()},
			{Key: "filter", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"a", "b"}}}}}},
		}},
		{Key: "verbosity", Value: "queryPlanner"},
	}).Decode(&reply)
	if err != nil {
		s.logger.WarnContext(ctx, "explain a query; taking the store to be indexed", "error", err)
		return PushdownIndexed
	}
	if pushed, ok := reply.Lookup("filterPushdown").BooleanOK(); ok && !pushed {
		return PushdownIDOnly
	}
	if strings.Contains(reply.Lookup("queryPlanner", "winningPlan").String(), `"COLLSCAN"`) {
		return PushdownIDOnly
	}
	return PushdownIndexed
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

// EstimatedReferrals returns about how many referrals the store holds: on
// the embedded store the read planner's count, elsewhere the collection
// statistics (a count would read every referral on a store without indexes).
func (s *Store) EstimatedReferrals(ctx context.Context) (int64, error) {
	if s.planTable(s.referrals) != nil {
		// FerretDB's collection statistics read every document; the
		// planner counts the entries of an index.
		return s.countDocuments(ctx, s.referrals, bson.D{})
	}
	cur, err := s.referrals.Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}})
	if err != nil {
		return 0, fmt.Errorf("collection statistics of referrals: %w", err)
	}
	var stats []struct {
		Count int64 `bson:"count"`
	}
	if err := cur.All(ctx, &stats); err != nil {
		return 0, fmt.Errorf("collection statistics of referrals: %w", err)
	}
	if len(stats) == 0 {
		return 0, nil
	}
	return stats[0].Count, nil
}
