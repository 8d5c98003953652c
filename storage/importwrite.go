package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// importFields are the fields of a created referral's change.
var importFields = []string{"referralSource", "customerProfile", "details", "status", "statusReason", "participants"}

// createImported writes the new referrals of recs at the positions at,
// each as one write of the mutations would, all at once: their intents,
// their participants (listed as due when invited, as invitations are),
// then the referrals, whose inserts make each whole visible at once
// (readers find participants through the referral's participation
// list), then their changes, recorded together. A record whose write
// fails gets the error in out; its intent stays when the write may have
// happened, for recovery. It returns the records whose referral another
// write created meanwhile.
func (s *Store) createImported(ctx context.Context, recs []*ImportedReferral, at []int, out []ImportResult) (raced []int) {
	if len(at) == 0 {
		return nil
	}
	fail := func(i int, err error) { out[i] = ImportResult{Err: err} }
	intents := make([]*intent, len(recs))
	var docs, due, parts []any
	var owners []int // the record of each of parts
	for _, i := range at {
		rec := recs[i]
		r := &rec.Referral
		r.Participation = make([]Participation, len(rec.Participants))
		for j := range rec.Participants {
			p := &rec.Participants[j]
			p.ReferralID = r.ID
			if p.CreatedDateTime.IsZero() {
				// Readers list a referral's participants by creation, then
				// id: these dates keep the order of the record.
				p.CreatedDateTime = r.CreatedDateTime.Add(time.Duration(j) * time.Millisecond)
			}
			if p.Users == nil {
				p.Users = []ParticipantUser{}
			}
			for k := range p.Users {
				if p.Users[k].ID == "" {
					p.Users[k].ID = uuid.NewString() // as an invitation names its users
				}
			}
			r.Participation[j] = p.Participation()
			parts, owners = append(parts, p), append(owners, i)
		}
		due = append(due, dueEntries(ptrs(rec.Participants))...)
		in := s.newIntent(ctx, "")
		in.ReferralID, in.Version, in.Type, in.Fields = r.ID, 1, ChangeCreated, importFields
		intents[i] = in
		docs = append(docs, in)
	}
	if _, err := s.pending.InsertMany(ctx, docs); err != nil {
		err = fmt.Errorf("record the changes to come: %w", err) // recovery drops intents whose writes did not happen
		for _, i := range at {
			fail(i, err)
		}
		return nil
	}
	if err := insertNew(ctx, s.due, due); err != nil {
		for _, i := range at {
			fail(i, err)
		}
		return nil
	}
	for k, err := range insertEach(ctx, s.participants, parts) {
		if mongo.IsDuplicateKeyError(err) {
			// Left by an import of the same referral that did not finish
			// (checkParticipantIDs): written over.
			p := parts[k].(*Participant)
			_, err = s.participants.ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, p, options.Replace().SetUpsert(true))
		}
		if err != nil && out[owners[k]].Err == nil {
			fail(owners[k], fmt.Errorf("write participant: %w", err)) // the intent stays: recovery looks
		}
	}
	s.reach(stepParticipants)
	var written []int
	docs = docs[:0]
	for _, i := range at {
		if out[i].Err == nil {
			written, docs = append(written, i), append(docs, &recs[i].Referral)
		}
	}
	errs := insertEach(ctx, s.referrals, docs)
	s.reach(stepWritten)
	var changes []changeToRecord
	for k, i := range written {
		switch err := errs[k]; {
		case mongo.IsDuplicateKeyError(err):
			// Another write created it meanwhile (an import of the same
			// file at once): importRun reconciles the record with it.
			fail(i, Errorf(CodeConflict, "referral %s was created by another write meanwhile: import it again", recs[i].Referral.ID))
			s.giveUp(ctx, intents[i], out[i].Err)
			raced = append(raced, i)
		case err != nil:
			fail(i, fmt.Errorf("insert referral: %w", err)) // the intent stays: the insert may have happened
		default:
			changes = append(changes, changeToRecord{&recs[i].Referral, ChangeCreated, importFields, intents[i]})
		}
	}
	s.recordChanges(ctx, changes)
	return raced
}

// insertEach inserts docs in one unordered command and returns the error
// of each (nil for those inserted). When the command fails as a whole,
// every document has its error.
func insertEach(ctx context.Context, coll *mongo.Collection, docs []any) []error {
	errs := make([]error, len(docs))
	if len(docs) == 0 {
		return errs
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bulk mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bulk) && bulk.WriteConcernError == nil:
		for _, we := range bulk.WriteErrors {
			if we.Index >= 0 && we.Index < len(errs) {
				errs[we.Index] = mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}
			}
		}
	default:
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
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
	s.reach(stepImportUpdate)
	after, err := s.updateVersioned(ctx, r.ID, current.Version, bson.D{{Key: "$set", Value: set}}, in.Writer)
	if err != nil {
		s.giveUp(ctx, in, err)
		return err
	}
	s.reach(stepWritten)
	s.recordChange(ctx, after, ChangeUpdated, fields, in)
	return nil
}
