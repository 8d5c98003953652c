package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// defaultInvitationLifetime is how long an invitation stays open when the
// inviter does not say, as in Partner Center.
const defaultInvitationLifetime = 14 * 24 * time.Hour

// statusMoves is the referral status transition table.
var statusMoves = map[ReferralStatus][]ReferralStatus{
	ReferralPending: {ReferralActive, ReferralLost, ReferralArchived},
	ReferralActive:  {ReferralWon, ReferralLost, ReferralArchived},
	ReferralWon:     {ReferralArchived},
	ReferralLost:    {ReferralArchived},
}

// CreateReferral validates in and stores a new PENDING referral at
// version 1. Invalid input is CodeBadUserInput naming the field; a partner
// gets CodeForbidden (so for every write below but answering invitations).
func (s *Store) CreateReferral(ctx context.Context, in ReferralInput) (*Referral, error) {
	if err := requireAdmin(ctx, "create referrals"); err != nil {
		return nil, err
	}
	if err := checkEnum("referral.referralSource", in.ReferralSource, referralSourcePositions); err != nil {
		return nil, err
	}
	var c check
	c.profile("referral.customerProfile", in.CustomerProfile, true)
	c.details("referral.details", in.Details)
	if err := checkTags(ctx, s.TagsByKey, &c, "referral.details", in.Details); err != nil {
		return nil, err
	}
	if c.err != nil {
		return nil, c.err
	}
	t := s.Now()
	p := in.CustomerProfile
	r := &Referral{
		ID: uuid.NewString(), CreatedDateTime: t, UpdatedDateTime: t, Version: 1,
		Status: ReferralPending, ReferralSource: in.ReferralSource,
		CustomerProfile: &CustomerProfile{ID: uuid.NewString(), Name: strings.TrimSpace(*p.Name), Address: p.Address, Contacts: p.Contacts},
		Details:         &ReferralDetails{Requirements: Requirements{}},
		Participation:   []Participation{},
	}
	if p.Size != nil {
		r.CustomerProfile.Size = *p.Size
	}
	if r.CustomerProfile.Contacts == nil {
		r.CustomerProfile.Contacts = []Contact{}
	}
	if d := in.Details; d != nil {
		r.Details.Notes, r.Details.DealValue, r.Details.ClosingDate = d.Notes, d.DealValue, d.ClosingDate
		if d.Requirements != nil {
			r.Details.Requirements = *d.Requirements
		}
	}
	fields := []string{"referralSource", "customerProfile", "details", "status"}
	intent, err := s.intend(ctx, r.ID, 1, ChangeCreated, fields)
	if err != nil {
		return nil, err
	}
	if _, err := s.referrals.InsertOne(ctx, r); err != nil {
		return nil, fmt.Errorf("insert referral: %w", err) // the intent stays: the insert may have happened
	}
	s.reach(stepWritten)
	s.recordChange(ctx, r, ChangeCreated, fields, intent)
	return r, nil
}

// UpdateReferral applies patch to the referral id if it is still at
// expectedVersion, in one MongoDB update that also sets updatedDateTime and
// increments the version. Errors: CodeBadUserInput, CodeNotFound, CodeConflict.
func (s *Store) UpdateReferral(ctx context.Context, id string, expectedVersion int64, patch ReferralPatch) (*Referral, error) {
	if err := requireAdmin(ctx, "update referrals"); err != nil {
		return nil, err
	}
	var c check
	if patch.CustomerProfile == nil && patch.Details == nil {
		c.fail("patch", "give customerProfile, details or both")
	}
	c.profile("patch.customerProfile", patch.CustomerProfile, false)
	c.details("patch.details", patch.Details)
	if err := checkTags(ctx, s.TagsByKey, &c, "patch.details", patch.Details); err != nil {
		return nil, err
	}
	if c.err != nil {
		return nil, c.err
	}
	set, fields := patchSet(patch)
	if len(fields) == 0 {
		return nil, badInput("patch", "nothing to change; give at least one field")
	}
	in, err := s.intend(ctx, id, expectedVersion+1, ChangeUpdated, fields)
	if err != nil {
		return nil, err
	}
	r, err := s.updateVersioned(ctx, id, expectedVersion, bson.D{{Key: "$set", Value: set}}, in.Writer)
	if err != nil {
		s.giveUp(ctx, in, err)
		return nil, err
	}
	s.reach(stepWritten)
	s.recordChange(ctx, r, ChangeUpdated, fields, in)
	return r, nil
}

// patchSet turns a patch into $set paths and the API names of the fields.
func patchSet(patch ReferralPatch) (bson.D, []string) {
	var set bson.D
	var fields []string
	put := func(field, path string, v any) {
		set = append(set, bson.E{Key: path, Value: v})
		fields = append(fields, field)
	}
	if p := patch.CustomerProfile; p != nil {
		if p.Name != nil {
			put("customerProfile.name", "customerProfile.name", strings.TrimSpace(*p.Name))
		}
		if p.Address != nil {
			put("customerProfile.address", "customerProfile.address", p.Address)
		}
		if p.Size != nil {
			put("customerProfile.size", "customerProfile.size", *p.Size)
		}
		if p.Contacts != nil {
			put("customerProfile.contacts", "customerProfile.contacts", p.Contacts)
		}
	}
	if d := patch.Details; d != nil {
		if d.Notes != nil {
			put("details.notes", "details.notes", *d.Notes)
		}
		if d.DealValue != nil {
			put("details.dealValue", "details.dealValueCents", int64(*d.DealValue))
		}
		if d.ClosingDate != nil {
			put("details.closingDate", "details.closingDate", d.ClosingDate.UTC())
			set = append(set, closingPeriodsSet(*d.ClosingDate)...)
		}
		if d.Requirements != nil {
			for _, f := range requirementFields {
				if ids := f.ids(d.Requirements); ids != nil {
					put("details.requirements."+f.name, "details.requirements."+f.name, ids)
				}
			}
		}
	}
	return set, fields
}

// ChangeReferralStatus moves the referral id to status if the transition
// table allows it and the referral is still at expectedVersion.
func (s *Store) ChangeReferralStatus(ctx context.Context, id string, expectedVersion int64, to ReferralStatus, reason *string) (*Referral, error) {
	if err := requireAdmin(ctx, "change the status of referrals"); err != nil {
		return nil, err
	}
	if err := checkEnum("status", to, referralStatusPositions); err != nil {
		return nil, err
	}
	var c check
	if c.multiline("reason", reason, maxReasonLength); c.err != nil {
		return nil, c.err
	}
	current, err := s.referralByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if current.Version != expectedVersion {
		return nil, staleVersion(id, current.Version, expectedVersion)
	}
	if !allowedMove(current.Status, to) {
		return nil, badInput("status", "a referral cannot move from %s to %s", apiName(current.Status), apiName(to))
	}
	set := bson.D{{Key: "status", Value: to}, {Key: "statusReason", Value: reason}}
	fields := []string{"status", "statusReason"}
	in, err := s.intend(ctx, id, expectedVersion+1, ChangeStatus, fields)
	if err != nil {
		return nil, err
	}
	r, err := s.updateRead(ctx, id, expectedVersion, bson.D{{Key: "$set", Value: set}}, in.Writer)
	if err != nil {
		s.giveUp(ctx, in, err)
		return nil, err
	}
	s.reach(stepWritten)
	s.recordChange(ctx, r, ChangeStatus, fields, in)
	return r, nil
}

func allowedMove(from, to ReferralStatus) bool {
	for _, s := range statusMoves[from] {
		if s == to {
			return true
		}
	}
	return false
}

// apiName is the status as the API spells it ("PENDING").
func apiName(s ReferralStatus) string { return strings.ToUpper(string(s)) }

// tagReader reads tags of the catalog by key (TagsByKey, or an import's
// batch read once, see importTags).
type tagReader func(ctx context.Context, keys []TagKey) (map[TagKey]*Tag, error)

// checkTags records in c every requirement tag id missing from the
// catalog as read tells.
func checkTags(ctx context.Context, read tagReader, c *check, path string, d *DetailsInput) error {
	if d == nil || d.Requirements == nil {
		return nil
	}
	var keys []TagKey
	for _, f := range requirementFields {
		ids := f.ids(d.Requirements)
		if len(ids) > maxListLength {
			c.fail(path+".requirements."+f.name, "at most %d tags", maxListLength)
		}
		for i, id := range ids {
			c.length(fmt.Sprintf("%s.requirements.%s[%d]", path, f.name, i), id, maxTagIDLength)
			keys = append(keys, TagKey{f.category, id})
		}
	}
	if len(keys) == 0 || c.err != nil {
		return nil
	}
	found, err := read(ctx, keys)
	if err != nil {
		return err
	}
	for _, f := range requirementFields {
		for _, id := range f.ids(d.Requirements) {
			if found[TagKey{f.category, id}] == nil {
				c.fail(path+".requirements."+f.name, "%q is not a tag of the %s catalog", id, f.name)
			}
		}
	}
	return nil
}
