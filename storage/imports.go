package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ImportedReferral is one whole referral to import: the referral with its
// own id, dates, version and status, and its participants in the order
// they are listed (Participation and the participants' ReferralID and
// CreatedDateTime are set by ImportReferral).
type ImportedReferral struct {
	Referral     Referral
	Participants []Participant
	// ParticipantDetails says that the record gives its participants'
	// creation dates, locations, inviters and users, which are then
	// compared with the stored ones; an export of an earlier version
	// gives none of them.
	ParticipantDetails bool
	// Partial names the fields the record leaves out (a CSV header's
	// missing columns): it may create a referral, not update one, which
	// would clear them.
	Partial []string
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

// reconcile decides what to do with rec, whose referral current is stored
// with participants parts, and does it.
func (s *Store) reconcile(ctx context.Context, rec *ImportedReferral, current *Referral, parts []*Participant, opts ImportOptions) ImportResult {
	r := &rec.Referral
	fields := changedFields(current, r)
	sameParticipants := sameParticipants(parts, ptrs(rec.Participants), rec.ParticipantDetails, s.Now())
	switch {
	case len(fields) == 0 && sameParticipants:
		return ImportResult{Outcome: ImportUnchanged}
	case !sameParticipants:
		// Before the dates: neither a newer record nor overwrite mode
		// would change them.
		return ImportResult{Err: badInput("participants", "differ from the stored participants of referral %s: an import creates participants with a new referral but does not change those of a stored one (invite, or answer invitations, through the API)", r.ID)}
	case len(rec.Partial) > 0:
		return ImportResult{Err: badInput("", "the file leaves out %s: it can create a referral but not update one, which would clear them; import every column of the export", strings.Join(rec.Partial, ", "))}
	case !opts.Overwrite && !r.UpdatedDateTime.After(current.UpdatedDateTime):
		return ImportResult{Outcome: ImportSkipped, Reason: fmt.Sprintf("the stored referral was updated at %s, not before this record's updatedDateTime %s; import with mode=overwrite to replace it",
			current.UpdatedDateTime.Format(time.RFC3339Nano), r.UpdatedDateTime.Format(time.RFC3339Nano))}
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
