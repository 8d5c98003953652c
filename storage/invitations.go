package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// EffectiveStatus is the status as readers see it at t: an invitation past
// its expiration reads as Expired.
func (p *Participant) EffectiveStatus(t time.Time) ParticipantStatus {
	if p.Status == ParticipantInvited && p.ExpirationDateTime != nil && !t.Before(*p.ExpirationDateTime) {
		return ParticipantExpired
	}
	return p.Status
}

// InviteParticipant invites an organization to the referral referralID.
// The referral's participation list, updatedDateTime and version change
// in one update that also refuses a second participation of the same
// organization (CodeConflict); then the participant is stored.
func (s *Store) InviteParticipant(ctx context.Context, referralID string, in InviteInput) (*Participant, error) {
	if err := requireAdmin(ctx, "invite participants"); err != nil {
		return nil, err
	}
	t := s.Now()
	var c check
	if err := CheckOrganizationID(strings.TrimSpace(in.OrganizationID)); err != nil {
		c.fail("invitation.organizationId", "%s", err.Error())
	}
	c.text("invitation.organizationName", &in.OrganizationName, true, maxNameLength)
	c.text("invitation.locationId", in.LocationID, false, maxNameLength)
	if in.InvitedByParticipantID != nil {
		c.length("invitation.invitedByParticipantId", *in.InvitedByParticipantID, maxIDLength)
	}
	if len(in.Users) > maxListLength {
		c.fail("invitation.users", "at most %d users", maxListLength)
	}
	for i, u := range in.Users {
		c.person(fmt.Sprintf("invitation.users[%d]", i), u.FirstName, u.LastName, u.Email, u.PhoneNumber)
	}
	c.date("invitation.expirationDateTime", in.ExpirationDateTime)
	expires := t.Add(defaultInvitationLifetime)
	if in.ExpirationDateTime != nil {
		expires = in.ExpirationDateTime.UTC()
		if !expires.After(t) {
			c.fail("invitation.expirationDateTime", "must be in the future")
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	if in.InvitedByParticipantID != nil {
		inviter, err := s.ParticipantsByID(ctx, []string{*in.InvitedByParticipantID})
		if err != nil {
			return nil, err
		}
		if p := inviter[*in.InvitedByParticipantID]; p == nil || p.ReferralID != referralID {
			return nil, badInput("invitation.invitedByParticipantId", "%q does not take part in referral %s", *in.InvitedByParticipantID, referralID)
		}
	}
	p := &Participant{
		ID: uuid.NewString(), ReferralID: referralID, CreatedDateTime: t, ExpirationDateTime: &expires,
		OrganizationID: strings.TrimSpace(in.OrganizationID), OrganizationName: strings.TrimSpace(in.OrganizationName),
		LocationID: in.LocationID, Users: in.Users, Status: ParticipantInvited, InvitedByParticipantID: in.InvitedByParticipantID,
	}
	if p.Users == nil {
		p.Users = []ParticipantUser{}
	}
	for i := range p.Users {
		p.Users[i].ID = uuid.NewString()
	}
	// An invitation racing the referral's archiving may still land; an
	// archived referral takes none after.
	if r, err := s.referralByID(ctx, referralID); err != nil {
		return nil, err
	} else if err := refuseArchived("referralId", r); err != nil {
		return nil, err
	}
	// One participation per organization and referral, even when two
	// invitations race.
	membership := "participation:" + referralID + ":" + p.OrganizationID
	pending, err := s.claimPending(ctx, membership)
	if err != nil {
		return nil, err
	}
	if pending == nil {
		return nil, Errorf(CodeConflict, "organization %s already takes part in referral %s", p.OrganizationID, referralID)
	}
	if err := s.markDue(ctx, p); err != nil {
		s.releasePending(ctx, membership)
		return nil, err
	}
	if _, err := s.participants.InsertOne(ctx, p); err != nil {
		s.undoInvitation(ctx, membership, p.ID) // the insert may have happened
		return nil, fmt.Errorf("insert participant: %w", err)
	}
	after, err := s.updateCurrent(ctx, referralID, func(r *Referral) bson.D { return participationUpdate(r, p, true) })
	if err != nil {
		// Undo the participant so no half-written invitation remains.
		s.undoInvitation(ctx, membership, p.ID)
		return nil, err
	}
	s.reach(stepWritten)
	if s.recordChange(ctx, after, ChangeParticipant, []string{"participants"}, pending) {
		s.settle(ctx, membership) // else recovery publishes it, then settles
	}
	return p, nil
}

// RespondToInvitation accepts or rejects the invitation of participant id.
// Only an Invited, unexpired participant can answer (CodeBadUserInput
// otherwise); a concurrent answer makes the later one CodeConflict.
func (s *Store) RespondToInvitation(ctx context.Context, id string, response InvitationResponse) (*Participant, error) {
	if err := checkEnum("response", response, invitationResponses); err != nil {
		return nil, err
	}
	p, err := s.invitation(ctx, id)
	if err != nil {
		return nil, err
	}
	switch st := p.EffectiveStatus(s.Now()); {
	case st == ParticipantExpired && p.Status == ParticipantInvited:
		return nil, badInput("participant", "the invitation expired at %s and can no longer be answered", p.ExpirationDateTime.Format(time.RFC3339))
	case st != ParticipantInvited:
		return nil, badInput("participant", "only an INVITED participant can answer; this one is %s", strings.ToUpper(string(st)))
	}
	// An archived referral is read-only: an answer would change it (and
	// show an accepting partner the customer's address).
	if r, err := s.referralByID(ctx, p.ReferralID); err != nil {
		return nil, err
	} else if err := refuseArchived("participantId", r); err != nil {
		return nil, err
	}
	to := ParticipantAccepted
	if response == Reject {
		to = ParticipantRejected
	}
	settled, err := s.settleInvitation(ctx, p, to)
	if err != nil {
		return nil, err
	}
	if !settled {
		return nil, Errorf(CodeConflict, "participant %s answered the invitation meanwhile", id)
	}
	s.unmarkDue(ctx, p.ID)
	return p, nil
}

// invitation reads participant id for an answer, within what the caller
// may answer: an admin any participant, a partner its own organization's
// (participantScope, checked on the participant read by _id alone). A
// partner gets CodeForbidden for another organization's participant on a
// referral it sees and CodeNotFound for one it does not, so existence does
// not leak.
func (s *Store) invitation(ctx context.Context, id string) (*Participant, error) {
	caller := CallerFrom(ctx)
	var p Participant
	err := s.participants.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&p)
	switch {
	case err == nil && inParticipantScope(caller, &p):
		return &p, nil
	case err != nil && !errors.Is(err, mongo.ErrNoDocuments):
		return nil, fmt.Errorf("read participant: %w", err)
	case err == nil:
		visible := map[string]*Participant{id: &p}
		if err := s.keepVisible(ctx, caller, visible); err != nil {
			return nil, err
		}
		if visible[id] != nil {
			return nil, Errorf(CodeForbidden, "only organization %s may answer this invitation", p.OrganizationID)
		}
	}
	return nil, Errorf(CodeNotFound, "no participant with id %q", id)
}

// settleInvitation moves an invited participant to its final status and
// copies that into its referral's participation. A claim per participant
// lets exactly one of concurrent answers (or an answer and the expiry
// sweep) through; settled is false for the others. The participant is
// written first and put back if the referral cannot be updated, so the two
// never disagree.
func (s *Store) settleInvitation(ctx context.Context, p *Participant, to ParticipantStatus) (settled bool, err error) {
	key := "answer:" + p.ID
	in, err := s.claimPending(ctx, key)
	if err != nil || in == nil {
		return false, err
	}
	_, err = s.participants.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: to}}}})
	if err != nil {
		s.undoAnswer(ctx, key, p, to) // the update may have happened
		return false, fmt.Errorf("settle invitation: %w", err)
	}
	p.Status = to
	var refuse func(*Referral) error
	if to != ParticipantExpired {
		// An answer to an archived referral is refused on the version it
		// would be written over, so an archiving racing it is seen.
		refuse = func(r *Referral) error { return refuseArchived("participantId", r) }
	}
	after, _, err := s.putParticipation(ctx, p, false, refuse)
	if err != nil {
		s.undoAnswer(ctx, key, p, to)
		return false, err
	}
	s.reach(stepWritten)
	if s.recordChange(ctx, after, ChangeParticipant, []string{"participants"}, in) {
		s.settle(ctx, key) // else recovery publishes it, then settles
	}
	return true, nil
}
