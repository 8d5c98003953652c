package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ImportedReferral is one whole referral to import: the referral with its
// own id, dates, version and status, and its participants in the order
// they are listed (Participation and the participants' ReferralID and
// CreatedDateTime are set by ImportReferral).
type ImportedReferral struct {
	Referral     Referral
	Participants []Participant
}

// ImportOutcome is what importing one referral did.
type ImportOutcome string

// The outcomes of ImportReferral that are not errors.
const (
	ImportCreated   ImportOutcome = "created"
	ImportUpdated   ImportOutcome = "updated"
	ImportUnchanged ImportOutcome = "unchanged"
	ImportSkipped   ImportOutcome = "skipped"
)

// ImportOptions say how ImportReferral reconciles a record with the store.
type ImportOptions struct {
	// Overwrite updates a stored referral that differs whatever the dates.
	Overwrite bool
	// DryRun validates and decides the outcome, and writes nothing.
	DryRun bool
}

// ImportReferral reconciles rec with the referral of its id: absent, it is
// created as rec says (id, dates, version, status, participants); stored
// with the same content (everything but version and dates), it is
// unchanged; otherwise it is updated when rec's updatedDateTime is newer
// than the stored one or opts.Overwrite, and skipped (with the reason)
// when not. An update overwrites the referral's own fields in one
// versioned write (version+1, updatedDateTime now); it does not change
// participants, and a record whose participants differ from the stored
// ones is refused (CodeBadUserInput on "participants"). Every write goes
// through the write path of the mutations: its intent first, then the
// documents, then its change (see intent). rec is validated as the
// mutations validate their input (CodeBadUserInput naming the field); a
// partner gets CodeForbidden; a participant id of another referral is
// CodeConflict.
func (s *Store) ImportReferral(ctx context.Context, rec *ImportedReferral, opts ImportOptions) (ImportOutcome, string, error) {
	if err := requireAdmin(ctx, "import referrals"); err != nil {
		return "", "", err
	}
	if err := s.checkImport(ctx, rec); err != nil {
		return "", "", err
	}
	r := &rec.Referral
	current, err := s.referralByID(ctx, r.ID)
	if ErrorCodeOf(err) == CodeNotFound {
		if err := s.checkParticipantIDs(ctx, rec); err != nil || opts.DryRun {
			return ImportCreated, "", err
		}
		return ImportCreated, "", s.createImported(ctx, rec)
	}
	if err != nil {
		return "", "", err
	}
	stored, err := s.participantsOfReferrals(ctx, []string{r.ID})
	if err != nil {
		return "", "", err
	}
	fields := changedFields(current, r)
	sameParticipants := slices.Equal(participantKeys(stored[r.ID], s.Now()), participantKeys(ptrs(rec.Participants), s.Now()))
	switch {
	case len(fields) == 0 && sameParticipants:
		return ImportUnchanged, "", nil
	case !opts.Overwrite && !r.UpdatedDateTime.After(current.UpdatedDateTime):
		return ImportSkipped, fmt.Sprintf("the stored referral was updated at %s, not before this record's updatedDateTime %s; import with mode=overwrite to replace it",
			current.UpdatedDateTime.Format(time.RFC3339Nano), r.UpdatedDateTime.Format(time.RFC3339Nano)), nil
	case !sameParticipants:
		return "", "", badInput("participants", "differ from the stored participants of referral %s: an import creates participants with a new referral but does not change those of a stored one (invite, or answer invitations, through the API)", r.ID)
	case r.Status != current.Status && !allowedMove(current.Status, r.Status):
		// The moves of changeReferralStatus hold for an import too.
		return "", "", badInput("status", "a referral cannot move from %s to %s", apiName(current.Status), apiName(r.Status))
	case opts.DryRun:
		if err := refuseArchived("id", current); err != nil {
			return "", "", err
		}
		return ImportUpdated, "", nil
	}
	return ImportUpdated, "", s.overwriteImported(ctx, current, r, fields)
}

// checkImport validates rec as CreateReferral validates its input, plus
// what an import gives that a create does not: id, dates, version,
// status and participants. It normalizes what the checks normalize
// (dates to milliseconds, the country to upper case).
func (s *Store) checkImport(ctx context.Context, rec *ImportedReferral) error {
	r := &rec.Referral
	var c check
	if r.ID == "" {
		c.fail("id", "is required")
	}
	c.length("id", r.ID, maxIDLength)
	if err := checkEnum("status", r.Status, referralStatusPositions); err != nil {
		return err
	}
	if err := checkEnum("referralSource", r.ReferralSource, referralSourcePositions); err != nil {
		return err
	}
	c.date("createdDateTime", &r.CreatedDateTime)
	c.date("updatedDateTime", &r.UpdatedDateTime)
	if r.UpdatedDateTime.Before(r.CreatedDateTime) {
		c.fail("updatedDateTime", "is before createdDateTime")
	}
	if r.Version < 1 {
		c.fail("version", "must be at least 1, got %d", r.Version)
	}
	c.multiline("statusReason", r.StatusReason, maxReasonLength)
	c.profile("customerProfile", profileInput(r.CustomerProfile), true)
	details := detailsInput(r.Details)
	c.details("details", details)
	if err := s.checkTags(ctx, &c, "details", details); err != nil {
		return err
	}
	if c.err != nil {
		return c.err
	}
	return checkImportedParticipants(rec.Participants)
}

// profileInput is the input a create would give for p.
func profileInput(p *CustomerProfile) *CustomerProfileInput {
	if p == nil {
		return nil
	}
	in := &CustomerProfileInput{Name: &p.Name, Address: p.Address, Contacts: p.Contacts}
	if p.Size != "" {
		in.Size = &p.Size
	}
	return in
}

// detailsInput is the input a create would give for d.
func detailsInput(d *ReferralDetails) *DetailsInput {
	if d == nil {
		return nil
	}
	return &DetailsInput{Notes: d.Notes, DealValue: d.DealValue, ClosingDate: d.ClosingDate, Requirements: &d.Requirements}
}

// checkImportedParticipants validates participants as an invitation is
// validated, with their status: ids and organizations once each.
func checkImportedParticipants(parts []Participant) error {
	var c check
	if len(parts) > maxListLength {
		c.fail("participants", "at most %d participants", maxListLength)
	}
	ids, orgs := map[string]bool{}, map[string]bool{}
	for i := range parts {
		p := &parts[i]
		at := "participants[" + strconv.Itoa(i) + "]"
		if p.ID == "" {
			c.fail(at+".id", "is required")
		}
		c.length(at+".id", p.ID, maxIDLength)
		if err := CheckOrganizationID(p.OrganizationID); err != nil {
			c.fail(at+".organizationId", "%s", err.Error())
		}
		c.text(at+".organizationName", &p.OrganizationName, true, maxNameLength)
		c.date(at+".expirationDateTime", p.ExpirationDateTime)
		if ids[p.ID] {
			c.fail(at+".id", "%q is listed twice", p.ID)
		}
		if orgs[p.OrganizationID] {
			c.fail(at+".organizationId", "organization %s is listed twice: one participation per organization", p.OrganizationID)
		}
		ids[p.ID], orgs[p.OrganizationID] = true, true
		if c.err != nil {
			return c.err
		}
		if err := checkEnum(at+".status", p.Status, participantStatusPositions); err != nil {
			return err
		}
	}
	return nil
}

// checkParticipantIDs refuses (CodeConflict) a new referral whose
// participant ids belong to another referral. Those of the same referral
// are left by an import that did not finish, and are written over.
func (s *Store) checkParticipantIDs(ctx context.Context, rec *ImportedReferral) error {
	if len(rec.Participants) == 0 {
		return nil
	}
	ids := make([]string, len(rec.Participants))
	for i, p := range rec.Participants {
		ids[i] = p.ID
	}
	// By _id, one point read each where the store answers nothing else
	// from an index: a list of ids read every participant (3,000
	// PascalCase referrals with participants imported at 6 a second).
	found, err := findByID(ctx, s, s.participants, ids, nil, s.idOnly(), func(p *Participant) string { return p.ID })
	if err != nil {
		return fmt.Errorf("read participants by id: %w", err)
	}
	for _, p := range found {
		if p.ReferralID != rec.Referral.ID {
			return Errorf(CodeConflict, "participant %s takes part in another referral: participant ids are unique across referrals", p.ID)
		}
	}
	return nil
}

// importFields are the fields of a created referral's change.
var importFields = []string{"referralSource", "customerProfile", "details", "status", "statusReason", "participants"}

// createImported writes a new referral with its participants: its intent,
// the participants (listed as due when invited, as invitations are), then
// the referral, whose insert makes the whole visible at once (readers
// find participants through the referral's participation list), then
// its change.
func (s *Store) createImported(ctx context.Context, rec *ImportedReferral) error {
	r := &rec.Referral
	r.Participation = make([]Participation, len(rec.Participants))
	for i := range rec.Participants {
		p := &rec.Participants[i]
		// Readers list a referral's participants by creation, then id:
		// these dates keep the order of the record.
		p.ReferralID, p.CreatedDateTime = r.ID, r.CreatedDateTime.Add(time.Duration(i)*time.Millisecond)
		if p.Users == nil {
			p.Users = []ParticipantUser{}
		}
		r.Participation[i] = participationOf(p)
	}
	in, err := s.intend(ctx, r.ID, 1, ChangeCreated, importFields)
	if err != nil {
		return err
	}
	if err := insertNew(ctx, s.due, dueEntries(ptrs(rec.Participants))); err != nil {
		return err
	}
	for i := range rec.Participants {
		p := &rec.Participants[i]
		_, err := s.participants.ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, p, options.Replace().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("write participant: %w", err) // the intent stays: recovery looks
		}
	}
	s.reach(stepParticipants)
	if _, err := s.referrals.InsertOne(ctx, r); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			err = Errorf(CodeConflict, "referral %s was created by another write meanwhile: import it again", r.ID)
			s.giveUp(ctx, in, err)
			return err
		}
		return fmt.Errorf("insert referral: %w", err) // the intent stays: the insert may have happened
	}
	s.reach(stepWritten)
	s.recordChange(ctx, r, ChangeCreated, importFields, in)
	return nil
}

// overwriteImported sets the fields of current that r changes (fields, by
// changedFields) in one versioned update, which bumps the version and
// sets updatedDateTime, and records the change.
func (s *Store) overwriteImported(ctx context.Context, current, r *Referral, fields []string) error {
	next := *r
	next.CreatedDateTime = current.CreatedDateTime
	set := bson.D{
		{Key: "status", Value: r.Status}, {Key: "statusReason", Value: r.StatusReason},
		{Key: "referralSource", Value: r.ReferralSource},
		{Key: "customerProfile", Value: r.CustomerProfile}, {Key: "details", Value: r.Details},
		{Key: "periods", Value: periodsOf(&next)},
	}
	in, err := s.intend(ctx, r.ID, current.Version+1, ChangeUpdated, fields)
	if err != nil {
		return err
	}
	after, err := s.updateVersioned(ctx, r.ID, current.Version, bson.D{{Key: "$set", Value: set}}, in.Writer)
	if err != nil {
		s.giveUp(ctx, in, err)
		return err
	}
	s.reach(stepWritten)
	s.recordChange(ctx, after, ChangeUpdated, fields, in)
	return nil
}

// changedFields names the fields of the referral's own content (not its
// version and dates) in which b differs from a.
func changedFields(a, b *Referral) []string {
	var out []string
	for _, f := range []struct {
		name string
		x, y any
	}{
		{"status", a.Status, b.Status},
		{"statusReason", a.StatusReason, b.StatusReason},
		{"referralSource", a.ReferralSource, b.ReferralSource},
		{"customerProfile", normalProfile(a.CustomerProfile), normalProfile(b.CustomerProfile)},
		{"details", normalDetails(a.Details), normalDetails(b.Details)},
	} {
		if !sameBSON(f.x, f.y) {
			out = append(out, f.name)
		}
	}
	return out
}

// sameBSON compares two values as the store keeps them.
func sameBSON(x, y any) bool {
	bx, errX := bson.Marshal(bson.D{{Key: "v", Value: x}})
	by, errY := bson.Marshal(bson.D{{Key: "v", Value: y}})
	return errX == nil && errY == nil && bytes.Equal(bx, by)
}

// normalProfile is p with empty lists where it has none, as a reader
// sees it.
func normalProfile(p *CustomerProfile) *CustomerProfile {
	if p == nil {
		return nil
	}
	n := *p
	if n.Contacts == nil {
		n.Contacts = []Contact{}
	}
	return &n
}

// normalDetails is d with empty lists where it has none.
func normalDetails(d *ReferralDetails) *ReferralDetails {
	if d == nil {
		return nil
	}
	n := *d
	for _, l := range []*[]string{&n.Requirements.IndustryFocus, &n.Requirements.Products, &n.Requirements.ServiceTypes, &n.Requirements.Solutions} {
		if *l == nil {
			*l = []string{}
		}
	}
	return &n
}

// participantKey is what an export shows of a participant.
type participantKey struct {
	id, org, name string
	status        ParticipantStatus
	expires       int64
}

// participantKeys lists what readers see at now of parts, in order.
func participantKeys(parts []*Participant, now time.Time) []participantKey {
	out := make([]participantKey, len(parts))
	for i, p := range parts {
		out[i] = participantKey{id: p.ID, org: p.OrganizationID, name: p.OrganizationName, status: p.EffectiveStatus(now)}
		if p.ExpirationDateTime != nil {
			out[i].expires = p.ExpirationDateTime.UnixMilli()
		}
	}
	return out
}

func ptrs[T any](xs []T) []*T {
	out := make([]*T, len(xs))
	for i := range xs {
		out[i] = &xs[i]
	}
	return out
}
