package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
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
	// Planned is a dry run's memory of what its earlier records would
	// have written (NewImportMemory), so that a record repeating an id
	// gets the outcome it would get after them; nil remembers nothing.
	Planned *ImportMemory
	// reread: a reconciliation after a write that lost a race, not to
	// be retried again.
	reread bool
}

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

// ImportResult is what importing one record did: its outcome, why it was
// skipped, or the error that refused it.
type ImportResult struct {
	Outcome ImportOutcome
	Reason  string
	Err     error
}

// ImportReferral imports one record (see ImportReferrals).
func (s *Store) ImportReferral(ctx context.Context, rec *ImportedReferral, opts ImportOptions) (ImportOutcome, string, error) {
	res := s.ImportReferrals(ctx, []*ImportedReferral{rec}, opts)[0]
	return res.Outcome, res.Reason, res.Err
}

// ImportReferrals reconciles each record with the referral of its id, in
// order, with the outcome it would have imported alone: absent, it is
// created as the record says (id, dates, version, status, participants);
// stored with the same content (everything but version and dates), it is
// unchanged; otherwise it is updated when the record's updatedDateTime is
// newer than the stored one or opts.Overwrite, and skipped (with the
// reason) when not. An update overwrites the referral's own fields in one
// versioned write (version+1, updatedDateTime now); it does not change
// participants, and a record whose participants differ from the stored
// ones is refused (CodeBadUserInput on "participants"). Every write goes
// through the write path of the mutations: its intent first, then the
// documents, then its change (see intent). A record is validated as the
// mutations validate their input (CodeBadUserInput naming the field); a
// partner gets CodeForbidden; a participant id of another referral is
// CodeConflict.
//
// The records are read and written in runs of distinct ids, each run in
// a fixed number of commands whatever its length (its referrals, their
// participants and tags read at once; its creates written at once, their
// changes recorded in one insert); a record repeating an id of its run
// starts the next one, so that it meets what the first wrote. Updates are
// written one at a time (each is a versioned write).
func (s *Store) ImportReferrals(ctx context.Context, recs []*ImportedReferral, opts ImportOptions) []ImportResult {
	out := make([]ImportResult, len(recs))
	if err := requireAdmin(ctx, "import referrals"); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	for start := 0; start < len(recs); {
		end, ids := start, map[string]bool{}
		for end < len(recs) && !ids[recs[end].Referral.ID] {
			ids[recs[end].Referral.ID] = true
			end++
		}
		s.importRun(ctx, recs[start:end], opts, out[start:end])
		start = end
	}
	return out
}

// importRun imports recs, whose ids are distinct, into out.
func (s *Store) importRun(ctx context.Context, recs []*ImportedReferral, opts ImportOptions, out []ImportResult) {
	fail := func(err error) {
		for i := range out {
			if out[i].Outcome == "" && out[i].Err == nil {
				out[i].Err = err
			}
		}
	}
	tags, err := s.importTags(ctx, recs)
	if err != nil {
		fail(err)
		return
	}
	var ids []string
	for i, rec := range recs {
		if out[i].Err = s.checkImport(ctx, tags, rec); out[i].Err == nil {
			ids = append(ids, rec.Referral.ID)
		}
	}
	stored, err := findByID(ctx, s, s.referrals, ids, nil, s.idOnly(), func(r *Referral) string { return r.ID })
	if err != nil {
		fail(err)
		return
	}
	var storedIDs []string
	var creates []int
	for i, rec := range recs {
		switch {
		case out[i].Err != nil:
		case stored[rec.Referral.ID] != nil:
			storedIDs = append(storedIDs, rec.Referral.ID)
		default:
			creates = append(creates, i)
		}
	}
	storedParts, err := s.participantsOfReferrals(ctx, storedIDs)
	if err != nil {
		fail(err)
		return
	}
	if err := s.checkParticipantIDs(ctx, recs, creates, out); err != nil {
		fail(err)
		return
	}
	var toCreate []int
	now := s.Now()
	for i, rec := range recs {
		current := stored[rec.Referral.ID]
		planned, seen := plannedReferral{}, false
		if opts.DryRun && opts.Planned != nil {
			planned, seen = opts.Planned.planned[rec.Referral.ID]
		}
		switch {
		case out[i].Err != nil:
		case seen:
			out[i], opts.Planned.planned[rec.Referral.ID] = planned.outcome(rec, now, opts)
		case current == nil:
			if out[i].Outcome = ImportCreated; !opts.DryRun {
				toCreate = append(toCreate, i)
			}
		default:
			out[i] = s.reconcile(ctx, rec, current, storedParts[current.ID], opts)
		}
		if opts.DryRun && opts.Planned != nil && !seen {
			switch out[i].Outcome {
			case ImportCreated:
				opts.Planned.planned[rec.Referral.ID] = plan(rec, rec.Referral.UpdatedDateTime, now)
			case ImportUpdated:
				opts.Planned.planned[rec.Referral.ID] = plan(rec, now, now) // an update sets updatedDateTime
			}
		}
	}
	if raced := s.createImported(ctx, recs, toCreate, out); len(raced) > 0 {
		s.reconcileRaced(ctx, recs, raced, opts, out)
	}
}

// reconcileRaced reconciles the records of recs at the positions raced,
// whose referrals another write created while they were being created
// (two imports of one file at once), with what that write stored, as if
// they came after it: the same content is unchanged, not a conflict.
func (s *Store) reconcileRaced(ctx context.Context, recs []*ImportedReferral, raced []int, opts ImportOptions, out []ImportResult) {
	ids := make([]string, len(raced))
	for k, i := range raced {
		ids[k] = recs[i].Referral.ID
	}
	stored, err := findByID(ctx, s, s.referrals, ids, nil, s.idOnly(), func(r *Referral) string { return r.ID })
	if err != nil {
		return // each keeps its conflict
	}
	parts, err := s.participantsOfReferrals(ctx, ids)
	if err != nil {
		return
	}
	for _, i := range raced {
		if current := stored[recs[i].Referral.ID]; current != nil {
			out[i] = s.reconcile(ctx, recs[i], current, parts[current.ID], opts)
		}
	}
}

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

// reconcile decides what to do with rec, whose referral current is stored
// with participants parts, and does it.
func (s *Store) reconcile(ctx context.Context, rec *ImportedReferral, current *Referral, parts []*Participant, opts ImportOptions) ImportResult {
	r := &rec.Referral
	fields := changedFields(current, r)
	sameParticipants := slices.Equal(participantKeys(parts, s.Now()), participantKeys(ptrs(rec.Participants), s.Now()))
	switch {
	case len(fields) == 0 && sameParticipants:
		return ImportResult{Outcome: ImportUnchanged}
	case !opts.Overwrite && !r.UpdatedDateTime.After(current.UpdatedDateTime):
		return ImportResult{Outcome: ImportSkipped, Reason: fmt.Sprintf("the stored referral was updated at %s, not before this record's updatedDateTime %s; import with mode=overwrite to replace it",
			current.UpdatedDateTime.Format(time.RFC3339Nano), r.UpdatedDateTime.Format(time.RFC3339Nano))}
	case !sameParticipants:
		return ImportResult{Err: badInput("participants", "differ from the stored participants of referral %s: an import creates participants with a new referral but does not change those of a stored one (invite, or answer invitations, through the API)", r.ID)}
	case r.Status != current.Status && !allowedMove(current.Status, r.Status):
		// The moves of changeReferralStatus hold for an import too.
		return ImportResult{Err: badInput("status", "a referral cannot move from %s to %s", apiName(current.Status), apiName(r.Status))}
	case opts.DryRun:
		if err := refuseArchived("id", current); err != nil {
			return ImportResult{Err: err}
		}
		return ImportResult{Outcome: ImportUpdated}
	}
	if err := s.overwriteImported(ctx, current, r, fields); err != nil {
		if ErrorCodeOf(err) == CodeConflict && !opts.reread {
			// Another write moved the referral meanwhile (an import of
			// the same file at once): reconciled again with what it
			// wrote, as if after it.
			opts.reread = true
			if again, parts, rerr := s.rereadImported(ctx, r.ID); rerr == nil {
				return s.reconcile(ctx, rec, again, parts, opts)
			}
		}
		return ImportResult{Err: err}
	}
	return ImportResult{Outcome: ImportUpdated}
}

// rereadImported reads the referral id and its participants again.
func (s *Store) rereadImported(ctx context.Context, id string) (*Referral, []*Participant, error) {
	r, err := s.referralByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	parts, err := s.participantsOfReferrals(ctx, []string{id})
	return r, parts[id], err
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
			// Readers list a referral's participants by creation, then
			// id: these dates keep the order of the record.
			p.ReferralID, p.CreatedDateTime = r.ID, r.CreatedDateTime.Add(time.Duration(j)*time.Millisecond)
			if p.Users == nil {
				p.Users = []ParticipantUser{}
			}
			r.Participation[j] = participationOf(p)
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
