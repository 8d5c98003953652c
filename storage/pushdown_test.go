package storage

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"referrals/internal/testclock"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// filterLog records, per collection, the filters of the reads and writes
// the driver sends: find, findAndModify, update, delete and count; an
// aggregate is recorded with its pipeline as the filter.
type filterLog struct {
	mu   sync.Mutex
	sent []sentFilter
}

type sentFilter struct {
	command, collection string
	filter              bson.Raw
	limit               int64 // of a find, 0 for none
}

func (s sentFilter) String() string { return s.command + " " + s.collection + " " + s.filter.String() }

func (l *filterLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		// A filter left out matches every document.
		doc := func(v bson.RawValue) bson.Raw {
			if d, ok := v.DocumentOK(); ok {
				return d
			}
			empty, _ := bson.Marshal(bson.D{})
			return empty
		}
		var filters []bson.Raw
		switch e.CommandName {
		case "find":
			filters = append(filters, doc(e.Command.Lookup("filter")))
		case "findAndModify", "count":
			filters = append(filters, doc(e.Command.Lookup("query")))
		case "aggregate":
			filters = append(filters, bson.Raw(e.Command.Lookup("pipeline").Array()))
		case "update", "delete":
			list := map[string]string{"update": "updates", "delete": "deletes"}[e.CommandName]
			values, _ := e.Command.Lookup(list).Array().Values()
			for _, v := range values {
				filters = append(filters, doc(v.Document().Lookup("q")))
			}
		}
		limit, _ := e.Command.Lookup("limit").AsInt64OK()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, f := range filters {
			l.sent = append(l.sent, sentFilter{e.CommandName, coll, f, limit})
		}
	}}
}

// take returns and forgets what was sent so far.
func (l *filterLog) take() []sentFilter {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sent
	l.sent = nil
	return out
}

// idOnly reports whether f is exactly {_id: <string>}.
func idOnly(f sentFilter) bool {
	elems, err := f.filter.Elements()
	return err == nil && f.command != "aggregate" && len(elems) == 1 && elems[0].Key() == "_id" &&
		elems[0].Value().Type == bson.TypeString
}

// monitoredStore is a prepared store on a fresh database, on its own
// client whose filters go to log, with the clock now and pushdown forced
// unless it is PushdownDetect.
func monitoredStore(t *testing.T, log *filterLog, now func() time.Time, pushdown Pushdown) *Store {
	t.Helper()
	return openTestStore(t, Options{Monitor: log.monitor(), Now: now, Pushdown: pushdown})
}

// withPushdown returns s reading and writing as a store of kind p would,
// on the same database.
func withPushdown(s *Store, p Pushdown) *Store {
	opts := s.opts
	opts.Pushdown = p
	return newStore(s.client, opts)
}

// TestEmbeddedStoreIsIDOnly: the embedded store reports, when asked, that
// it answers a list of ids by reading the whole collection.
func TestEmbeddedStoreIsIDOnly(t *testing.T) {
	if got := newTestStore(t).Pushdown(); got != PushdownIDOnly {
		t.Errorf("detected %q, want %q", got, PushdownIDOnly)
	}
}

// TestIDLookupsUseAnIndex asks SQLite how it runs the query FerretDB sends
// for a filter {_id: v}, on every collection of a prepared database: by
// the index Prepare adds, not by reading the whole table.
func TestIDLookupsUseAnIndex(t *testing.T) {
	s := newTestStore(t)
	db, err := sql.Open("sqlite", "file:"+testEmbedded.File(s.db.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT name, table_name FROM _ferretdb_collections`)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			t.Fatal(err)
		}
		tables[name] = table
	}
	rows.Close()
	for _, name := range []string{"referrals", "participants", "claims", "tags", "invitationDue", "pendingWrites"} {
		table, ok := tables[name]
		if !ok {
			t.Errorf("no table for %s", name)
			continue
		}
		var id, parent, notUsed int
		var plan string
		q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
		if err := db.QueryRowContext(t.Context(), q, `"x"`).Scan(&id, &parent, &notUsed, &plan); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING INDEX") {
			t.Errorf("%s: SQLite plans %q for a lookup by _id", name, plan)
		}
	}
}

// callerKinds are the callers whose visibility the two ways of reading
// must agree on: an admin, partners of each standing on org's referrals,
// a partner on none, a partner with no organization, and a caller of an
// unknown role.
func callerKinds(org string) map[string]Caller {
	return map[string]Caller{
		"Admin":         {Subject: "a", Role: RoleAdmin},
		"Partner":       {Subject: "p", OrganizationID: org, Role: RolePartner},
		"PartnerOfNone": {Subject: "n", OrganizationID: "no-such-org", Role: RolePartner},
		"NoOrg":         CallerFrom(context.Background()),
		"UnknownRole":   {Subject: "u", OrganizationID: org, Role: "auditor"},
	}
}

// seedScopes fills s with demo referrals and the documents the API never
// writes but a store may hold: a referral without a participation list and
// one whose list is empty.
func seedScopes(t *testing.T, s *Store) ([]Referral, []Participant) {
	t.Helper()
	refs, parts := demoGenerate(5, 60, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	bare := []any{
		bson.D{{Key: "_id", Value: "no-list"}, {Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"}},
		bson.D{{Key: "_id", Value: "empty-list"}, {Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"}, {Key: "participation", Value: bson.A{}}},
	}
	if _, err := s.referrals.InsertMany(t.Context(), bare); err != nil {
		t.Fatal(err)
	}
	return refs, parts
}

// TestScopesAgree checks that the visibility rules checked in Go on a
// document read by _id alone select, for every kind of caller, exactly the
// documents the MongoDB conditions select.
func TestScopesAgree(t *testing.T) {
	s := newTestStore(t)
	refs, _ := seedScopes(t, s)
	ctx := asAdmin(t)
	agree := func(t *testing.T, what string, inQuery, inGo []string) {
		t.Helper()
		slices.Sort(inQuery)
		slices.Sort(inGo)
		if !slices.Equal(inQuery, inGo) {
			t.Errorf("%s: the query selects %d, the check in Go %d\nquery %v\ngo    %v", what, len(inQuery), len(inGo), inQuery, inGo)
		}
	}
	referralID := func(r *Referral) string { return r.ID }
	participantID := func(p *Participant) string { return p.ID }
	allRefs, err := findByKey(ctx, s, s.referrals, bson.D{}, 100, referralID)
	if err != nil {
		t.Fatal(err)
	}
	allParts, err := findByKey(ctx, s, s.participants, bson.D{}, 200, participantID)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range callerKinds(refs[0].Participation[0].OrganizationID) {
		t.Run(name, func(t *testing.T) {
			refsInScope, err := findByKey(ctx, s, s.referrals, referralScope(c), 100, referralID)
			if err != nil {
				t.Fatal(err)
			}
			var inGo []string
			for id, r := range allRefs {
				if inReferralScope(c, r) {
					inGo = append(inGo, id)
				}
			}
			agree(t, "referrals", slices.Collect(maps.Keys(refsInScope)), inGo)

			partsInScope, err := findByKey(ctx, s, s.participants, participantScope(c), 200, participantID)
			if err != nil {
				t.Fatal(err)
			}
			inGo = nil
			for id, p := range allParts {
				if inParticipantScope(c, p) {
					inGo = append(inGo, id)
				}
			}
			agree(t, "participants", slices.Collect(maps.Keys(partsInScope)), inGo)
		})
	}
}

// TestReadPathsAgree reads the same data by id both ways, as an indexed
// store (one query per batch, the scope in it) and as an id-only store
// (reads by _id, the scope checked in Go), for every kind of caller, and
// gets the same answers.
func TestReadPathsAgree(t *testing.T) {
	s := newTestStore(t)
	refs, parts := seedScopes(t, s)
	referralIDs := []string{"no-list", "empty-list", "unknown"}
	for _, r := range refs {
		referralIDs = append(referralIDs, r.ID)
	}
	participantIDs := []string{"unknown"}
	for _, p := range parts {
		participantIDs = append(participantIDs, p.ID)
	}
	indexed, idOnly := withPushdown(s, PushdownIndexed), withPushdown(s, PushdownIDOnly)
	for name, c := range callerKinds(refs[0].Participation[0].OrganizationID) {
		t.Run(name, func(t *testing.T) {
			ctx := WithCaller(t.Context(), c)
			for _, read := range []struct {
				name string
				run  func(*Store) (any, int, error)
			}{
				{"ReferralsByID", func(s *Store) (any, int, error) {
					got, err := s.ReferralsByID(ctx, referralIDs)
					return got, len(got), err
				}},
				{"ParticipantsByID", func(s *Store) (any, int, error) {
					got, err := s.ParticipantsByID(ctx, participantIDs)
					return got, len(got), err
				}},
				{"ParticipantsByReferral", func(s *Store) (any, int, error) {
					got, err := s.ParticipantsByReferral(ctx, referralIDs)
					return got, len(got), err
				}},
			} {
				want, n, err := read.run(indexed)
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := read.run(idOnly)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: reading by _id differs from one query", read.name)
				}
				if visible := n > 0; visible == (name == "PartnerOfNone" || name == "NoOrg") {
					t.Errorf("%s: %d visible", read.name, n)
				}
			}
		})
	}
}

// TestIDOnlyStoreReadsAndWritesByID is the proof that where the store
// answers only {_id: v} from an index, the reads (by the read planner or
// by _id) and the versioned writes send no other filter to referrals,
// participants or claims: the driver's command monitor records every
// filter sent. An indexed store
// keeps the one conditional update.
func TestIDOnlyStoreReadsAndWritesByID(t *testing.T) {
	clock := testclock.At(testAnchor)
	var log filterLog
	s := monitoredStore(t, &log, clock.Now, PushdownDetect)
	if s.Pushdown() != PushdownIDOnly {
		t.Fatalf("the embedded store detected as %q", s.Pushdown())
	}
	refs, parts := demoGenerate(9, 30, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	admin := asAdmin(t)
	r := refs[len(refs)-1]
	// open are referrals the steps may still invite to: not archived, and
	// not r, which a step archives.
	var open []string
	for _, x := range refs[:len(refs)-1] {
		if x.Status != ReferralArchived {
			open = append(open, x.ID)
		}
	}
	org := r.Participation[0].OrganizationID
	partner := WithCaller(t.Context(), Caller{Subject: "p", OrganizationID: org, Role: RolePartner})
	stranger := WithCaller(t.Context(), Caller{Subject: "s", OrganizationID: "stranger", Role: RolePartner})
	soon := testAnchor.Add(time.Hour)
	log.take()

	steps := []struct {
		name string
		run  func() error
	}{
		{"ReadReferral", func() error { _, err := s.ReferralsByID(partner, []string{r.ID, refs[0].ID}); return err }},
		{"ReadParticipant", func() error {
			_, err := s.ParticipantsByID(partner, []string{r.Participation[0].ParticipantID})
			return err
		}},
		{"ReadParticipants", func() error { _, err := s.ParticipantsByReferral(admin, []string{r.ID}); return err }},
		{"Update", func() error {
			_, err := s.UpdateReferral(admin, r.ID, r.Version, ReferralPatch{Details: &DetailsInput{Notes: ptr("n")}})
			return err
		}},
		{"StaleUpdate", func() error {
			_, err := s.UpdateReferral(admin, r.ID, r.Version, ReferralPatch{Details: &DetailsInput{Notes: ptr("m")}})
			if ErrorCodeOf(err) != CodeConflict {
				return fmt.Errorf("a stale update: %v, want CONFLICT", err)
			}
			return nil
		}},
		{"ChangeStatus", func() error {
			_, err := s.ChangeReferralStatus(admin, r.ID, r.Version+1, ReferralArchived, nil)
			return err
		}},
		{"InviteAndAnswer", func() error {
			p, err := s.InviteParticipant(admin, open[0], InviteInput{OrganizationID: "late", OrganizationName: "Late"})
			if err != nil {
				return err
			}
			if _, err := s.RespondToInvitation(stranger, p.ID, Accept); ErrorCodeOf(err) != CodeNotFound {
				return fmt.Errorf("a stranger answering: %v, want NOT_FOUND", err)
			}
			_, err = s.RespondToInvitation(WithCaller(t.Context(), Caller{Subject: "l", OrganizationID: "late", Role: RolePartner}), p.ID, Accept)
			return err
		}},
		{"Expire", func() error {
			if _, err := s.InviteParticipant(admin, open[1], InviteInput{OrganizationID: "slow", OrganizationName: "Slow", ExpirationDateTime: &soon}); err != nil {
				return err
			}
			clock.Advance(2 * time.Hour)
			if n, err := s.ExpireInvitations(admin); n < 1 || err != nil {
				return fmt.Errorf("expired %d, %v; want at least 1", n, err)
			}
			return nil
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			planned := s.PlannedSelections()
			if err := step.run(); err != nil {
				t.Fatal(err)
			}
			sent := log.take()
			if len(sent) == 0 && s.PlannedSelections() == planned {
				t.Fatal("no filter recorded and nothing selected by the read planner")
			}
			for _, f := range sent {
				switch f.collection {
				case "referrals", "participants", "claims":
					if !idOnly(f) {
						t.Errorf("sent %s", f)
					}
				}
			}
		})
	}

	t.Run("IndexedStoreUpdatesConditionally", func(t *testing.T) {
		indexed := withPushdown(s, PushdownIndexed)
		current, err := s.referralByID(admin, refs[2].ID)
		if err != nil {
			t.Fatal(err)
		}
		log.take()
		if _, err := indexed.UpdateReferral(admin, current.ID, current.Version, ReferralPatch{Details: &DetailsInput{Notes: ptr("i")}}); err != nil {
			t.Fatal(err)
		}
		var updates []sentFilter
		for _, f := range log.take() {
			if f.collection == "referrals" {
				updates = append(updates, f)
			}
		}
		if len(updates) != 1 || updates[0].command != "findAndModify" ||
			updates[0].filter.Lookup("_id").StringValue() != current.ID || updates[0].filter.Lookup("version").AsInt64() != current.Version {
			t.Errorf("sent %v, want only a findAndModify of %s at version %d", updates, current.ID, current.Version)
		}
	})
}

// TestVersionedWritesExactlyOnce runs 20 writers with the same expected
// version against each kind of store: one wins, the others get CONFLICT,
// and the referral moved one version.
func TestVersionedWritesExactlyOnce(t *testing.T) {
	base := newTestStore(t)
	for _, p := range []Pushdown{PushdownIndexed, PushdownIDOnly} {
		t.Run(string(p), func(t *testing.T) {
			s := withPushdown(base, p)
			ctx := asAdmin(t)
			r := newReferral(t, s)
			var wg sync.WaitGroup
			codes := make([]ErrorCode, 20)
			for i := range codes {
				wg.Go(func() {
					_, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{Notes: ptr(fmt.Sprint("writer ", i))}})
					codes[i] = "OK"
					if err != nil {
						codes[i] = ErrorCodeOf(err)
					}
				})
			}
			wg.Wait()
			if won := slices.Index(codes, "OK"); won < 0 || slices.Index(codes[won+1:], "OK") >= 0 ||
				slices.ContainsFunc(codes, func(c ErrorCode) bool { return c != "OK" && c != CodeConflict }) {
				t.Errorf("outcomes %v, want one OK and CONFLICT for the rest", codes)
			}
			after, err := s.referralByID(ctx, r.ID)
			if err != nil || after.Version != 2 {
				t.Errorf("after the race: %+v, %v; want version 2", after, err)
			}
		})
	}
}
