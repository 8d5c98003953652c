package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// importRecord is a valid referral to import, with two participants.
func importRecord(id string, updated time.Time) *ImportedReferral {
	created := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	expires := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	return &ImportedReferral{
		Referral: Referral{
			ID: id, CreatedDateTime: created, UpdatedDateTime: updated, Version: 3,
			Status: ReferralActive, ReferralSource: SourcePartnerLed,
			CustomerProfile: &CustomerProfile{ID: "profile-" + id, Name: "Contoso", Contacts: []Contact{{FirstName: "Ana", LastName: "Lee"}},
				Address: &Address{AddressLine1: "1 Main St", City: "Seattle", PostalCode: "98101", Country: "US"}},
			Details: &ReferralDetails{Requirements: Requirements{IndustryFocus: []string{}, Products: []string{}, ServiceTypes: []string{}, Solutions: []string{}}},
		},
		Participants: []Participant{
			{ID: id + "-p2", OrganizationID: "org-b", OrganizationName: "Fabrikam", Status: ParticipantAccepted},
			{ID: id + "-p1", OrganizationID: "org-a", OrganizationName: "Adatum", Status: ParticipantInvited, ExpirationDateTime: &expires},
		},
	}
}

// TestImportReferral: a record is created whole (its own id, dates,
// version, status, participants in its order), then updated in one
// versioned write, and each write records its change in the feed.
func TestImportReferral(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	imp := func(rec *ImportedReferral, opts ImportOptions) ImportOutcome {
		t.Helper()
		got, _, err := s.ImportReferral(ctx, rec, opts)
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		return got
	}

	if got := imp(importRecord("r1", updated), ImportOptions{DryRun: true, Planned: NewImportMemory()}); got != ImportCreated {
		t.Fatalf("dry run: got %s, want created", got)
	}
	if _, err := s.referralByID(ctx, "r1"); ErrorCodeOf(err) != CodeNotFound {
		t.Fatalf("after a dry run: got %v, want no referral", err)
	}
	if got := imp(importRecord("r1", updated), ImportOptions{}); got != ImportCreated {
		t.Fatalf("got %s, want created", got)
	}
	r, err := s.referralByID(ctx, "r1")
	if err != nil || r.Version != 3 || r.Status != ReferralActive || !r.UpdatedDateTime.Equal(updated) || len(r.Participation) != 2 {
		t.Fatalf("stored %+v, %v; want version 3, ACTIVE, updated %s, 2 participations", r, err, updated)
	}
	parts, err := s.ParticipantsOf(ctx, []*Referral{r})
	if err != nil || len(parts["r1"]) != 2 || parts["r1"][0].ID != "r1-p2" || parts["r1"][1].ID != "r1-p1" {
		t.Fatalf("participants %v, %v; want r1-p2 then r1-p1, in the record's order", parts["r1"], err)
	}
	if got := imp(importRecord("r1", updated), ImportOptions{}); got != ImportUnchanged {
		t.Fatalf("again: got %s, want unchanged", got)
	}

	changed := importRecord("r1", updated.Add(time.Hour))
	changed.Referral.CustomerProfile.Name = "Contoso Ltd"
	if got := imp(changed, ImportOptions{}); got != ImportUpdated {
		t.Fatalf("newer: got %s, want updated", got)
	}
	r, _ = s.referralByID(ctx, "r1")
	if r.Version != 4 || r.CustomerProfile.Name != "Contoso Ltd" {
		t.Fatalf("after the update: version %d, name %q; want 4, Contoso Ltd", r.Version, r.CustomerProfile.Name)
	}

	head, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.ChangesBetween(ctx, 0, head)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Type != ChangeCreated || changes[1].Type != ChangeUpdated ||
		changes[0].After.Version != 3 || changes[1].After.Version != 4 || len(changes[1].Fields) != 1 || changes[1].Fields[0] != "customerProfile" {
		t.Fatalf("changes %+v; want CREATED at version 3, then UPDATED of customerProfile at version 4", changes)
	}
	if n := pendingCount(t, s); n != 0 {
		t.Errorf("%d intents left in pendingWrites, want 0", n)
	}
}

// TestImportReferralRefusals: what the mutations refuse, an import
// refuses, naming the field; a partner may not import.
func TestImportReferralRefusals(t *testing.T) {
	s := newTestStore(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		edit  func(r *ImportedReferral)
		ctx   func(t *testing.T) context.Context
		code  ErrorCode
		field string
	}{
		{"ErrCountry", func(r *ImportedReferral) { r.Referral.CustomerProfile.Address.Country = "ZZ" }, asAdmin, CodeBadUserInput, "customerProfile.address.country"},
		{"ErrTag", func(r *ImportedReferral) { r.Referral.Details.Requirements.Products = []string{"No such product"} }, asAdmin, CodeBadUserInput, "details.requirements.products"},
		{"ErrVersion", func(r *ImportedReferral) { r.Referral.Version = 0 }, asAdmin, CodeBadUserInput, "version"},
		{"ErrSameOrganization", func(r *ImportedReferral) { r.Participants[1].OrganizationID = "org-b" }, asAdmin, CodeBadUserInput, "participants.1.organizationId"},
		{"ErrInvitedByNoOne", func(r *ImportedReferral) { r.Participants[1].InvitedByParticipantID = ptr("nobody") }, asAdmin, CodeBadUserInput, "participants.1.invitedByParticipantId"},
		{"ErrInvitedBySelf", func(r *ImportedReferral) { r.Participants[0].InvitedByParticipantID = &r.Participants[0].ID }, asAdmin, CodeBadUserInput, "participants.0.invitedByParticipantId"},
		{"ErrUserName", func(r *ImportedReferral) {
			r.Participants[0].Users = []ParticipantUser{{FirstName: " ", LastName: "Lee"}}
		}, asAdmin, CodeBadUserInput, "participants.0.users.0.firstName"},
		{"ErrLocation", func(r *ImportedReferral) { r.Participants[0].LocationID = ptr("a\x1bb") }, asAdmin, CodeBadUserInput, "participants.0.locationId"},
		{"ErrPartner", func(*ImportedReferral) {}, func(t *testing.T) context.Context {
			return WithCaller(t.Context(), Caller{Subject: "p", Role: RolePartner, OrganizationID: "org-a"})
		}, CodeForbidden, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := importRecord("bad-"+c.name, updated)
			c.edit(rec)
			_, _, err := s.ImportReferral(c.ctx(t), rec, ImportOptions{})
			var field string
			if e, ok := err.(*Error); ok {
				field = strings.Join(e.Field, ".")
			}
			if ErrorCodeOf(err) != c.code || field != c.field {
				t.Fatalf("got %v (field %q), want %s on %q", err, field, c.code, c.field)
			}
			if _, err := s.referralByID(asAdmin(t), rec.Referral.ID); ErrorCodeOf(err) != CodeNotFound {
				t.Fatalf("a refused record was written: %v", err)
			}
		})
	}
}

// pendingCount counts the entries of pendingWrites.
func pendingCount(t *testing.T, s *Store) int64 {
	t.Helper()
	n, err := s.pending.CountDocuments(t.Context(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportCutAndRerun kills a process in the middle of an import, after
// the participants are written (before the referral) and after the
// referral is written (before its change), and restarts: the referral is
// there whole with one CREATED change, or not at all with no participant
// left; importing the record again finishes the job.
func TestImportCutAndRerun(t *testing.T) {
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		step    string
		written bool
		rerun   ImportOutcome
	}{
		{"CutBeforeTheReferral", stepParticipants, false, ImportCreated},
		{"CutBeforeItsChange", stepWritten, true, ImportUnchanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead := crashingStore(t)
			ctx := asAdmin(t)
			reached := crashAt(t, dead, tc.step)
			dying(func() { _, _, _ = dead.ImportReferral(ctx, importRecord("cut", updated), ImportOptions{}) })
			<-reached
			again := restart(t, dead, abandonedAfter+time.Minute)
			parts, err := again.participants.CountDocuments(ctx, map[string]any{"referralId": "cut"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = again.referralByID(ctx, "cut")
			if written := err == nil; written != tc.written || (written && parts != 2) || (!written && parts != 0) {
				t.Fatalf("after recovery: referral written %v (%v), %d participants; want written %v, with 2 participants or none", written, err, parts, tc.written)
			}
			if n, want := changesOf(feedOf(t, again), "cut", ChangeCreated), map[bool]int{true: 1, false: 0}[tc.written]; n != want {
				t.Fatalf("%d CREATED changes after recovery, want %d", n, want)
			}
			got, _, err := again.ImportReferral(ctx, importRecord("cut", updated), ImportOptions{})
			if err != nil || got != tc.rerun {
				t.Fatalf("rerun: %s, %v; want %s", got, err, tc.rerun)
			}
			if n := changesOf(feedOf(t, again), "cut", ChangeCreated); n != 1 {
				t.Fatalf("%d CREATED changes after the rerun, want 1", n)
			}
		})
	}
}

// TestImportReferralUpdateRefusals: an update of a stored referral whose
// participants differ from the record's, which is ARCHIVED, or whose
// status move changeReferralStatus refuses, is refused.
func TestImportReferralUpdateRefusals(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"parts", "archived"} {
		rec := importRecord(id, updated)
		if id == "archived" {
			rec.Referral.Status = ReferralArchived
		}
		if _, _, err := s.ImportReferral(ctx, rec, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fewer := importRecord("parts", updated.Add(time.Hour))
	fewer.Participants = fewer.Participants[:1]
	_, _, err := s.ImportReferral(ctx, fewer, ImportOptions{})
	if e, ok := err.(*Error); !ok || e.Code != CodeBadUserInput || strings.Join(e.Field, ".") != "participants" {
		t.Errorf("other participants: got %v, want BAD_USER_INPUT on participants", err)
	}
	// The status moves of changeReferralStatus hold for an import, in
	// overwrite mode too (an outside test moved a WON referral back to
	// PENDING so).
	won := importRecord("won", updated)
	won.Referral.Status = ReferralWon
	if _, _, err := s.ImportReferral(ctx, won, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	back := importRecord("won", updated.Add(time.Hour))
	back.Referral.Status = ReferralPending
	for _, dry := range []bool{true, false} {
		_, _, err := s.ImportReferral(ctx, back, ImportOptions{DryRun: dry, Overwrite: true})
		if e, ok := err.(*Error); !ok || e.Code != CodeBadUserInput || strings.Join(e.Field, ".") != "status" {
			t.Errorf("WON back to PENDING (dry run %v): got %v, want BAD_USER_INPUT on status", dry, err)
		}
	}
	changed := importRecord("archived", updated.Add(time.Hour))
	changed.Referral.Status = ReferralArchived
	changed.Referral.CustomerProfile.Name = "Renamed"
	for _, dry := range []bool{true, false} {
		if _, _, err := s.ImportReferral(ctx, changed, ImportOptions{DryRun: dry}); ErrorCodeOf(err) != CodeBadUserInput || !strings.Contains(err.Error(), "ARCHIVED") {
			t.Errorf("archived (dry run %v): got %v, want BAD_USER_INPUT saying it is ARCHIVED", dry, err)
		}
	}
}

// commandCounter counts the commands the driver sends, by name.
type commandCounter struct {
	mu    sync.Mutex
	count map[string]int
}

func (c *commandCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.count[e.CommandName]++
	}}
}

// take returns and forgets the counts so far.
func (c *commandCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.count
	c.count = map[string]int{}
	return out
}

// TestImportReferralsInBatches: a batch of records is read and written in
// a fixed number of commands whatever its length (50 or 150 new
// referrals with two participants each, then 150 unchanged), and its
// records get the outcomes they would get one after another: a repeated
// id meets what the first wrote, and a participant id taken by an earlier
// record of the batch is a conflict.
func TestImportReferralsInBatches(t *testing.T) {
	counter := &commandCounter{count: map[string]int{}}
	s := openTestStore(t, Options{Monitor: counter.monitor()})
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	batch := func(prefix string, n int) []*ImportedReferral {
		out := make([]*ImportedReferral, n)
		for i := range out {
			out[i] = importRecord(fmt.Sprintf("%s-%03d", prefix, i), updated)
		}
		return out
	}
	imported := func(recs []*ImportedReferral, want ImportOutcome) (commands map[string]int, selections int64) {
		t.Helper()
		counter.take()
		before := s.PlannedSelections()
		for i, res := range s.ImportReferrals(ctx, recs, ImportOptions{}) {
			if res.Err != nil || res.Outcome != want {
				t.Fatalf("record %d: %s, %v; want %s", i, res.Outcome, res.Err, want)
			}
		}
		return counter.take(), s.PlannedSelections() - before
	}
	small, smallSel := imported(batch("a", 50), ImportCreated)
	large, largeSel := imported(batch("b", 150), ImportCreated)
	if !maps.Equal(small, large) || smallSel != largeSel {
		t.Errorf("50 new referrals: %v and %d planner selections; 150: %v and %d; want the same", small, smallSel, large, largeSel)
	}
	if small["insert"] > 5 {
		t.Errorf("50 new referrals took %d inserts, want one each for intents, due invitations, participants, referrals and changes", small["insert"])
	}
	same, _ := imported(batch("b", 150), ImportUnchanged)
	for name, n := range same {
		if name != "find" && name != "aggregate" || n > 4 {
			t.Errorf("150 unchanged referrals sent %d %s commands, want a few reads and no write (all: %v)", n, name, same)
		}
	}
	if n, err := s.referrals.CountDocuments(ctx, bson.D{}); err != nil || n != 200 {
		t.Fatalf("%d referrals stored, %v; want 200", n, err)
	}

	// One after another, as alone.
	newer := importRecord("c-1", updated.Add(time.Hour))
	newer.Referral.StatusReason = ptr("moved on")
	stealing := importRecord("c-2", updated)
	stealing.Participants[0].ID = "c-1-p2"
	recs := []*ImportedReferral{importRecord("c-1", updated), importRecord("c-1", updated), newer, stealing, importRecord("c-3", updated)}
	got := s.ImportReferrals(ctx, recs, ImportOptions{})
	want := []ImportOutcome{ImportCreated, ImportUnchanged, ImportUpdated, "", ImportCreated}
	for i, res := range got {
		if res.Outcome != want[i] {
			t.Errorf("record %d: %s, %v; want %s", i, res.Outcome, res.Err, want[i])
		}
	}
	if ErrorCodeOf(got[3].Err) != CodeConflict {
		t.Errorf("a participant id of an earlier record of the batch: %v, want CONFLICT", got[3].Err)
	}
	if _, err := s.referralByID(ctx, "c-2"); ErrorCodeOf(err) != CodeNotFound {
		t.Errorf("the refused record was stored: %v", err)
	}
	changes, err := s.ChangesBetween(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	for _, c := range changes {
		if c.Type == ChangeCreated {
			created[c.ReferralID]++
		}
	}
	if len(created) != 202 || created["c-1"] != 1 || created["c-3"] != 1 || created["c-2"] != 0 {
		t.Errorf("CREATED changes for %d referrals (c-1: %d, c-2: %d, c-3: %d), want one for each of the 202 created", len(created), created["c-1"], created["c-2"], created["c-3"])
	}
}

// TestDryRunAgreesWithImport: a dry run that remembers what its records
// would have written gives every record of a file the outcome the import
// gives it, also where records repeat an id, in one batch or in later
// ones (it said "created" for each repetition of a new id).
func TestDryRunAgreesWithImport(t *testing.T) {
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	variant := func(id string, hours int, reason string, status ReferralStatus) *ImportedReferral {
		rec := importRecord(id, updated.Add(time.Duration(hours)*time.Hour))
		if reason != "" {
			rec.Referral.StatusReason = ptr(reason)
		}
		rec.Referral.Status = status
		return rec
	}
	file := func() [][]*ImportedReferral { // batches, as the handler sends them
		return [][]*ImportedReferral{
			{variant("d-1", 0, "", ReferralActive), variant("d-1", 0, "", ReferralActive), variant("d-2", 0, "", ReferralActive)},
			{variant("d-1", 1, "newer", ReferralActive), variant("d-1", 2, "older than the update", ReferralActive)},
			{variant("d-2", 1, "", ReferralWon), variant("d-2", 2, "", ReferralPending), variant("d-2", 0, "", ReferralActive)},
			{variant("d-3", 0, "", ReferralActive), withOrganizationName(variant("d-3", 3, "", ReferralActive), "Renamed")},
		}
	}
	outcomes := func(s *Store, opts ImportOptions) []string {
		var out []string
		for _, batch := range file() {
			for _, res := range s.ImportReferrals(ctx, batch, opts) {
				out = append(out, fmt.Sprintf("%s %s", res.Outcome, ErrorCodeOf(res.Err)))
			}
		}
		return out
	}
	dry := newTestStore(t)
	planned := outcomes(dry, ImportOptions{DryRun: true, Planned: NewImportMemory()})
	imported := outcomes(newTestStore(t), ImportOptions{})
	if !slices.Equal(planned, imported) {
		t.Errorf("dry run: %q\n  import: %q", planned, imported)
	}
	if n, err := dry.referrals.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("the dry run stored %d referrals, %v", n, err)
	}
}

// TestImportsOfOneFileAtOnce: when another import creates a referral
// between this one's participants and its referral (two imports of one
// file at once), the record is reconciled with what the other stored:
// unchanged, as it would be after it, not a CONFLICT asking to import
// again (an outside test's three concurrent imports all exited 1).
func TestImportsOfOneFileAtOnce(t *testing.T) {
	s := newTestStore(t)
	other := newStore(s.client, s.opts)
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	file := func() []*ImportedReferral {
		return []*ImportedReferral{importRecord("race-1", updated), importRecord("race-2", updated)}
	}
	// race imports recs, the other process importing them first when this
	// one reaches step; the other gets theirs, this one wants.
	race := func(step string, recs func() []*ImportedReferral, theirs, want ImportOutcome) {
		t.Helper()
		first := true
		s.step = func(at string) {
			if at == step && first {
				first = false
				for i, res := range other.ImportReferrals(ctx, recs(), ImportOptions{}) {
					if res.Err != nil || res.Outcome != theirs {
						t.Errorf("at %s, the other import's record %d: %s, %v; want %s", step, i, res.Outcome, res.Err, theirs)
					}
				}
			}
		}
		for i, res := range s.ImportReferrals(ctx, recs(), ImportOptions{}) {
			if res.Err != nil || res.Outcome != want {
				t.Errorf("at %s, record %d: %s, %v; want %s", step, i, res.Outcome, res.Err, want)
			}
		}
		if first {
			t.Errorf("the import never reached %s", step)
		}
	}
	race(stepParticipants, file, ImportCreated, ImportUnchanged)
	changes, err := s.ChangesBetween(ctx, 0, 100)
	if err != nil || len(changes) != 2 {
		t.Errorf("%d changes, %v; want the other import's two CREATED", len(changes), err)
	}
	// The same for updates: the other import writes the newer version
	// between this one's read and its versioned write.
	race(stepImportUpdate, func() []*ImportedReferral {
		recs := file()
		for _, rec := range recs {
			rec.Referral.UpdatedDateTime = updated.Add(time.Hour)
			rec.Referral.StatusReason = ptr("newer")
		}
		return recs
	}, ImportUpdated, ImportUnchanged)
}

// TestImportBatchesFromTwoProcesses: two processes importing at once take
// the same sequence numbers for their batches of changes; the batch that
// finds a number taken stores what it stored and records the rest one at
// a time, so each created referral has exactly one change and the feed
// has no gap.
func TestImportBatchesFromTwoProcesses(t *testing.T) {
	a := newTestStore(t)
	b := newStore(a.client, a.opts)
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for p, s := range []*Store{a, b} {
		wg.Go(func() {
			for batch := range 5 {
				recs := make([]*ImportedReferral, 20)
				for i := range recs {
					recs[i] = importRecord(fmt.Sprintf("two-%d-%d-%02d", p, batch, i), updated)
				}
				for i, res := range s.ImportReferrals(ctx, recs, ImportOptions{}) {
					if res.Err != nil || res.Outcome != ImportCreated {
						t.Errorf("process %d, batch %d, record %d: %s, %v", p, batch, i, res.Outcome, res.Err)
					}
				}
			}
		})
	}
	wg.Wait()
	changes, err := a.ChangesBetween(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has number %d: the feed has a gap", i+1, c.Seq)
		}
		created[c.ReferralID]++
	}
	if len(changes) != 200 || len(created) != 200 {
		t.Fatalf("%d changes for %d referrals, want one for each of 200", len(changes), len(created))
	}
}

// withOrganizationName renames rec's first participant's organization.
func withOrganizationName(rec *ImportedReferral, name string) *ImportedReferral {
	rec.Participants[0].OrganizationName = name
	return rec
}

// TestImportParticipantsInFull: a record's participants are created with
// their creation dates, locations, inviters and users as given; the same
// record again is unchanged, and so is one that leaves those out (an
// export of an earlier version); one whose users differ is refused, as
// other participant changes are.
func TestImportParticipantsInFull(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	updated := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	invited := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	full := func() *ImportedReferral {
		rec := importRecord("full", updated)
		p := &rec.Participants[1]
		p.CreatedDateTime, p.LocationID, p.InvitedByParticipantID = invited, ptr("adatum-oslo"), &rec.Participants[0].ID
		p.Users = []ParticipantUser{{ID: "u1", FirstName: "Jo", LastName: "Kim", Email: "jo@adatum.example"}}
		rec.ParticipantDetails = true
		return rec
	}
	if outcome, _, err := s.ImportReferral(ctx, full(), ImportOptions{}); outcome != ImportCreated || err != nil {
		t.Fatalf("import: %s, %v", outcome, err)
	}
	parts, err := s.ParticipantsByReferral(ctx, []string{"full"})
	if err != nil || len(parts["full"]) != 2 {
		t.Fatalf("participants: %v, %v", parts, err)
	}
	var got *Participant
	for _, p := range parts["full"] {
		if p.ID == "full-p1" {
			got = p
		}
	}
	if got == nil || !got.CreatedDateTime.Equal(invited) || got.LocationID == nil || *got.LocationID != "adatum-oslo" ||
		got.InvitedByParticipantID == nil || *got.InvitedByParticipantID != "full-p2" || len(got.Users) != 1 || got.Users[0] != full().Participants[1].Users[0] {
		t.Fatalf("stored participant %+v, want the record's", got)
	}
	older := full()
	p := &older.Participants[1]
	p.CreatedDateTime, p.LocationID, p.InvitedByParticipantID, p.Users = time.Time{}, nil, nil, nil
	older.ParticipantDetails = false
	for name, rec := range map[string]*ImportedReferral{"Same": full(), "WithoutTheNewFields": older} {
		if outcome, _, err := s.ImportReferral(ctx, rec, ImportOptions{}); outcome != ImportUnchanged || err != nil {
			t.Errorf("%s: %s, %v; want unchanged", name, outcome, err)
		}
	}
	for name, edit := range map[string]func(p *Participant){
		"UserRenamed": func(p *Participant) { p.Users[0].LastName = "Park" },
		"UsersEmpty":  func(p *Participant) { p.Users = []ParticipantUser{} },
		"NoLocation":  func(p *Participant) { p.LocationID = nil },
		"NoInviter":   func(p *Participant) { p.InvitedByParticipantID = nil },
	} {
		changed := full()
		changed.Referral.UpdatedDateTime = updated.Add(time.Hour)
		edit(&changed.Participants[1])
		if _, _, err := s.ImportReferral(ctx, changed, ImportOptions{}); ErrorCodeOf(err) != CodeBadUserInput || !strings.Contains(err.Error(), "differ from the stored participants") {
			t.Errorf("%s: %v, want participants refused", name, err)
		}
	}
	same := full() // the same date: the participants, not the date, are what is wrong
	same.Participants[1].Users = nil
	if _, _, err := s.ImportReferral(ctx, same, ImportOptions{}); !strings.Contains(fmt.Sprint(err), "differ from the stored participants") {
		t.Errorf("participants that differ in a record not newer: %v, want participants refused rather than skipped", err)
	}
}
