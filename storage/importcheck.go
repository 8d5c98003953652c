package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// importTags reads the catalog's tags of every record of recs at once,
// and returns a reader that answers from them (or from the store, for a
// key it did not read).
func (s *Store) importTags(ctx context.Context, recs []*ImportedReferral) (tagReader, error) {
	asked := map[TagKey]bool{}
	var keys []TagKey
	for _, rec := range recs {
		if rec.Referral.Details == nil {
			continue
		}
		for _, f := range requirementFields {
			for _, id := range f.ids(&rec.Referral.Details.Requirements) {
				if k := (TagKey{f.category, id}); !asked[k] && len(id) <= maxTagIDLength {
					asked[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	found := map[TagKey]*Tag{}
	for chunk := range slices.Chunk(keys, insertBatch) {
		part, err := s.TagsByKey(ctx, chunk)
		if err != nil {
			return nil, err
		}
		maps.Copy(found, part)
	}
	return func(ctx context.Context, keys []TagKey) (map[TagKey]*Tag, error) {
		for _, k := range keys {
			if !asked[k] {
				return s.TagsByKey(ctx, keys)
			}
		}
		return found, nil
	}, nil
}

// checkImport validates rec as CreateReferral validates its input, plus
// what an import gives that a create does not: id, dates, version,
// status and participants. It normalizes what the checks normalize
// (dates to milliseconds, the country to upper case).
func (s *Store) checkImport(ctx context.Context, tags tagReader, rec *ImportedReferral) error {
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
	if err := checkTags(ctx, tags, &c, "details", details); err != nil {
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
		c.text(at+".locationId", p.LocationID, false, maxNameLength)
		c.date(at+".expirationDateTime", p.ExpirationDateTime)
		if !p.CreatedDateTime.IsZero() {
			c.date(at+".createdDateTime", &p.CreatedDateTime)
		}
		if len(p.Users) > maxListLength {
			c.fail(at+".users", "at most %d users", maxListLength)
		}
		for j, u := range p.Users {
			user := at + ".users[" + strconv.Itoa(j) + "]"
			c.length(user+".id", u.ID, maxIDLength)
			c.person(user, u.FirstName, u.LastName, u.Email, u.PhoneNumber)
		}
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
	for i := range parts {
		if by := parts[i].InvitedByParticipantID; by != nil && (!ids[*by] || *by == parts[i].ID) {
			return badInput("participants["+strconv.Itoa(i)+"].invitedByParticipantId", "%q is not another participant of this referral", *by)
		}
	}
	return nil
}

// checkParticipantIDs refuses (CodeConflict, in out) each new referral of
// recs (at the positions creates) whose participant ids belong to another
// referral, stored or created earlier in recs. Those of the same referral
// are left by an import that did not finish, and are written over.
func (s *Store) checkParticipantIDs(ctx context.Context, recs []*ImportedReferral, creates []int, out []ImportResult) error {
	var ids []string
	for _, i := range creates {
		for _, p := range recs[i].Participants {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// By _id, one point read each where the store answers nothing else
	// from an index: a list of ids read every participant (3,000
	// PascalCase referrals with participants imported at 6 a second).
	found, err := findByID(ctx, s, s.participants, ids, nil, s.idOnly(), func(p *Participant) string { return p.ID })
	if err != nil {
		return fmt.Errorf("read participants by id: %w", err)
	}
	taken := map[string]string{} // participant id → referral id
	for _, p := range found {
		taken[p.ID] = p.ReferralID
	}
	for _, i := range creates {
		rec := recs[i]
		for _, p := range rec.Participants {
			if other, ok := taken[p.ID]; ok && other != rec.Referral.ID {
				out[i].Err = Errorf(CodeConflict, "participant %s takes part in another referral: participant ids are unique across referrals", p.ID)
				break
			}
		}
		if out[i].Err == nil {
			for _, p := range rec.Participants {
				taken[p.ID] = rec.Referral.ID
			}
		}
	}
	return nil
}
