package storage

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ImportMemory remembers, for a dry run, a fingerprint of each referral
// its records would have created or updated: about a hundred bytes a
// referral, not the referral.
type ImportMemory struct {
	planned map[string]plannedReferral
}

// NewImportMemory returns an empty memory for one dry run.
func NewImportMemory() *ImportMemory {
	return &ImportMemory{planned: map[string]plannedReferral{}}
}

// plannedReferral is what a dry run would have left of a referral: the
// hash of what reconcile compares, its updatedDateTime and status.
type plannedReferral struct {
	content, participants [sha256.Size]byte
	updated               time.Time
	status                ReferralStatus
}

// plan returns the fingerprint of rec as it would be stored, updated at
// updated.
func plan(rec *ImportedReferral, updated, now time.Time) plannedReferral {
	content, _ := bson.Marshal(ownContent(&rec.Referral)) // the fields changedFields compares
	return plannedReferral{
		content:      sha256.Sum256(content),
		participants: sha256.Sum256(fmt.Appendf(nil, "%v", participantKeys(ptrs(rec.Participants), now))),
		updated:      updated, status: rec.Referral.Status,
	}
}

// outcome is what importing rec would do after the records before it,
// which would have left p (see reconcile).
func (p plannedReferral) outcome(rec *ImportedReferral, now time.Time, opts ImportOptions) (ImportResult, plannedReferral) {
	r := &rec.Referral
	next := plan(rec, now, now)
	switch {
	case next.content == p.content && next.participants == p.participants:
		return ImportResult{Outcome: ImportUnchanged}, p
	case !opts.Overwrite && !r.UpdatedDateTime.After(p.updated):
		return ImportResult{Outcome: ImportSkipped, Reason: fmt.Sprintf("an earlier record of this file would leave the referral updated at %s, not before this record's updatedDateTime %s; import with mode=overwrite to replace it",
			p.updated.Format(time.RFC3339Nano), r.UpdatedDateTime.Format(time.RFC3339Nano))}, p
	case next.participants != p.participants:
		return ImportResult{Err: badInput("participants", "differ from the participants an earlier record of this file gives referral %s: an import creates participants with a new referral but does not change those of a stored one (invite, or answer invitations, through the API)", r.ID)}, p
	case r.Status != p.status && !allowedMove(p.status, r.Status):
		return ImportResult{Err: badInput("status", "a referral cannot move from %s to %s", apiName(p.status), apiName(r.Status))}, p
	case p.status == ReferralArchived:
		return ImportResult{Err: badInput("id", "referral %s would be ARCHIVED by an earlier record of this file, and is read-only", r.ID)}, p
	}
	return ImportResult{Outcome: ImportUpdated}, next
}

// changedFields names the fields of the referral's own content (not its
// version and dates) in which b differs from a.
func changedFields(a, b *Referral) []string {
	var out []string
	x, y := ownContent(a), ownContent(b)
	for i := range x {
		if !sameBSON(x[i].Value, y[i].Value) {
			out = append(out, x[i].Key)
		}
	}
	return out
}

// ownContent is what an import compares of a referral, field by field as
// the API names them: its own content, not its version and dates, with
// empty lists where it has none, as a reader sees it.
func ownContent(r *Referral) bson.D {
	return bson.D{
		{Key: "status", Value: r.Status}, {Key: "statusReason", Value: r.StatusReason}, {Key: "referralSource", Value: r.ReferralSource},
		{Key: "customerProfile", Value: normalProfile(r.CustomerProfile)}, {Key: "details", Value: normalDetails(r.Details)},
	}
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

// sameParticipants reports whether given, a record's participants, are
// stored: what readers see of each at now, in order, and, when the record
// gives them (details; an export of an earlier version does not), their
// users, locations, inviters and the creation dates it gives.
func sameParticipants(stored, given []*Participant, details bool, now time.Time) bool {
	if !slices.Equal(participantKeys(stored, now), participantKeys(given, now)) {
		return false
	}
	if !details {
		return true
	}
	for i, g := range given {
		s := stored[i]
		switch {
		case !slices.EqualFunc(s.Users, g.Users, sameUser),
			!sameString(s.LocationID, g.LocationID),
			!sameString(s.InvitedByParticipantID, g.InvitedByParticipantID),
			!g.CreatedDateTime.IsZero() && !g.CreatedDateTime.Equal(s.CreatedDateTime):
			return false
		}
	}
	return true
}

// sameString reports whether a and b are both nil or hold the same.
func sameString(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// sameUser reports whether given is the stored user; a record may leave
// a user's id out (the import makes one, as an invitation does).
func sameUser(stored, given ParticipantUser) bool {
	if given.ID == "" {
		given.ID = stored.ID
	}
	return stored == given
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
