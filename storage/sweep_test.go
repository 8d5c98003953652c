package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"referrals/internal/testclock"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// commandsOn returns the commands of sent as "command collection".
func commandsOn(sent []sentFilter) []string {
	var out []string
	for _, f := range sent {
		out = append(out, f.command+" "+f.collection)
	}
	return out
}

// TestSweepWorkFollowsWhatIsDue checks that the expiry sweep and the
// recovery of abandoned writes read only their small index collections and
// then go by _id: the commands of a sweep grow by the same few (at most
// 12) for each invitation it expires, whatever else the store holds, and
// finding nothing to do is two queries.
func TestSweepWorkFollowsWhatIsDue(t *testing.T) {
	clock := testclock.At(testAnchor)
	var log filterLog
	s := monitoredStore(t, &log, clock.Now, PushdownDetect)
	ctx := asAdmin(t)
	refs, parts := demoGenerate(4, 40, testAnchor)
	if err := s.InsertReferrals(ctx, refs, parts); err != nil {
		t.Fatal(err)
	}
	for i, n := 0, 0; n < 10; i++ { // history: claims the sweep must not read
		if refs[i].Status == ReferralArchived {
			continue // read-only
		}
		if _, err := s.UpdateReferral(ctx, refs[i].ID, refs[i].Version, ReferralPatch{Details: &DetailsInput{Notes: ptr("history")}}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	// Whatever the demo left open expires later than this.
	clock.Advance(-time.Hour)
	sweep := func(t *testing.T, due int) []string {
		t.Helper()
		for i := range due {
			at := clock.Now().Add(time.Minute)
			if _, err := s.InviteParticipant(ctx, refs[20+i].ID, InviteInput{OrganizationID: fmt.Sprintf("o%d-%d", clock.Now().Unix(), i), OrganizationName: "O", ExpirationDateTime: &at}); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(2 * time.Minute)
		log.take()
		n, err := s.ExpireInvitations(ctx)
		if err != nil || n != due {
			t.Fatalf("expired %d, %v; want %d", n, err, due)
		}
		sent := log.take()
		for _, f := range sent {
			if f.collection != "invitationDue" && f.collection != "pendingWrites" && !idOnly(f) {
				t.Errorf("the sweep sent %s", f)
			}
		}
		return commandsOn(sent)
	}
	idle := sweep(t, 0)
	if want := []string{"find pendingWrites", "find invitationDue"}; !slices.Equal(idle, want) {
		t.Errorf("a sweep with nothing due sent %v, want %v", idle, want)
	}
	one, three, five := len(sweep(t, 1)), len(sweep(t, 3)), len(sweep(t, 5))
	if perTwo := five - three; perTwo == 0 || three-one != perTwo || perTwo > 2*12 {
		t.Errorf("commands for 1, 3 and 5 due: %d, %d, %d; want the same few more for each invitation", one, three, five)
	}
}

// TestRecoveryFindsWritesByTheirEntry leaves a pending claim and its
// pendingWrites entry as a writer that died would, and checks that
// recovery finds and undoes it, drops an entry whose claim was settled,
// and keeps the entry of a write that may still be under way.
func TestRecoveryFindsWritesByTheirEntry(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r := newReferral(t, s)
	putClaim(t, s, "participation:"+r.ID+":dead", abandonedAt(), true)
	if _, err := s.pending.InsertOne(ctx, bson.D{{Key: "_id", Value: "participation:" + r.ID + ":settled"}, {Key: "at", Value: abandonedAt()}}); err != nil {
		t.Fatal(err)
	}
	putClaim(t, s, "participation:"+r.ID+":settled", abandonedAt(), false)
	putClaim(t, s, "participation:"+r.ID+":alive", time.Now().UTC().Truncate(time.Millisecond), true)
	if err := s.RecoverWrites(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	cur, err := s.pending.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var marks []claimDoc
	if err := cur.All(ctx, &marks); err != nil {
		t.Fatal(err)
	}
	for _, m := range marks {
		left = append(left, strings.TrimPrefix(m.Key, "participation:"+r.ID+":"))
	}
	if !slices.Equal(left, []string{"alive"}) {
		t.Errorf("pendingWrites after recovery: %v, want only alive's", left)
	}
	if exists, _ := claimPendingState(t, s, "participation:"+r.ID+":dead"); exists {
		t.Error("the dead writer's claim is still there")
	}
	if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "dead", OrganizationName: "Dead"}); err != nil {
		t.Errorf("inviting the organization whose invitation died: %v", err)
	}
}

// TestOpenWorkOfEarlierVersions prepares a database written before
// invitationDue and pendingWrites existed: an open invitation past its
// expiration and an abandoned invitation's pending claim. Prepare lists
// them, so the sweep expires the one and recovery undoes the other.
func TestOpenWorkOfEarlierVersions(t *testing.T) {
	clock := testclock.At(testAnchor)
	s, err := Connect(t.Context(), Options{URI: testURI, Database: fmt.Sprintf("test_%d", testDBSeq.Add(1)), Now: clock.Now, Embedded: testEmbedded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Drop(t.Context()); _ = s.Close(t.Context()) })
	ctx := asAdmin(t)
	refs, parts := demoGenerate(6, 10, testAnchor)
	// An invited participant, made open and past due.
	i := slices.IndexFunc(parts, func(p Participant) bool { return p.InvitedByParticipantID != nil })
	late := testAnchor.Add(-time.Hour)
	parts[i].Status, parts[i].ExpirationDateTime = ParticipantInvited, &late
	for j := range refs {
		for k, e := range refs[j].Participation {
			if e.ParticipantID == parts[i].ID {
				refs[j].Participation[k] = parts[i].Participation()
			}
		}
	}
	// Written as the earlier version did: no invitationDue, no pendingWrites.
	if _, err := s.referrals.InsertMany(ctx, toAny(refs)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.participants.InsertMany(ctx, toAny(parts)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.claims.InsertOne(ctx, bson.D{{Key: "_id", Value: "participation:" + refs[2].ID + ":gone"}, {Key: "at", Value: testAnchor.Add(-time.Hour)}, {Key: "pending", Value: true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := s.ExpireInvitations(ctx)
	if err != nil || n != 1 {
		t.Fatalf("the sweep expired %d, %v; want the invitation written before", n, err)
	}
	if exists, _ := claimPendingState(t, s, "participation:"+refs[2].ID+":gone"); exists {
		t.Error("the abandoned claim written before was not recovered")
	}
}
