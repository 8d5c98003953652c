package storage

import (
	"context"
	"log/slog"
	"time"

	"referrals/storage/changelog"
)

// ChangeType says what happened to a referral.
type ChangeType string

// The kinds of change.
const (
	ChangeCreated     ChangeType = "CREATED"
	ChangeUpdated     ChangeType = "UPDATED"
	ChangeStatus      ChangeType = "STATUS_CHANGED"
	ChangeParticipant ChangeType = "PARTICIPANT_CHANGED"
)

// changeSkipped marks a sequence number the feed gave up waiting for (its
// writer died between taking the number and recording the change). The
// marker takes the number for good, so a late writer records its change
// under another one; readers pass over it.
const changeSkipped ChangeType = "SKIPPED"

// Change is one event of the change feed: which referral changed, how,
// which fields (as the API names them) and when; and the referral as this
// change left it, so that subscribers see each change's own state (its
// status and version, who takes part) however late they read it. Its
// Header (Seq numbers the changes of one store densely from 1, in the
// order readers deliver them) is the change log's (package changelog).
type Change struct {
	changelog.Header `bson:",inline"`
	ReferralID       string     `bson:"referralId"`
	Type             ChangeType `bson:"type"`
	Fields           []string   `bson:"fields"`
	At               time.Time  `bson:"at"`
	After            *Referral  `bson:"after,omitempty"`
}

// changeLog is the store's change log of Changes.
type changeLog = changelog.Log[Change, *Change]

// Head returns the change's place in the log.
func (c *Change) Head() *changelog.Header { return &c.Header }

// Skip makes c a marker of a sequence number the log gave up waiting for.
func (c *Change) Skip(at time.Time) {
	c.Type, c.Fields, c.At = changeSkipped, []string{}, at
}

// Skipped reports whether c is such a marker.
func (c *Change) Skipped() bool { return c.Type == changeSkipped }

// LogValue names the change in the log's messages.
func (c *Change) LogValue() slog.Value {
	return slog.GroupValue(slog.String("referral_id", c.ReferralID), slog.String("type", string(c.Type)))
}

// recordChange appends a change to the feed (changelog.Log.Append): under
// the next free sequence number, published, handed to this process's
// reader; then the intent in, which the writer recorded before its write
// (see intend), is dropped, unless a pending claim holds it (its writer
// settles the claim). The write it describes has already happened, so a
// failure is retried and then logged, not returned: the caller's change
// stands, and its intent stays for RecoverWrites to publish. It reports
// whether the change is published.
func (s *Store) recordChange(ctx context.Context, after *Referral, t ChangeType, fields []string, in *intent) bool {
	return s.recordChanges(ctx, []changeToRecord{{after, t, fields, in}})[0]
}

// changeToRecord is a change recordChanges records: the referral as the
// write left it, what changed and the writer's intent.
type changeToRecord struct {
	after  *Referral
	t      ChangeType
	fields []string
	in     *intent
}

// recordChanges records the changes of several writes of one writer (an
// import's batch) as recordChange records one: appended together, in
// order, so that they are stored in one command and published with one
// head. It reports for each whether it is published.
func (s *Store) recordChanges(ctx context.Context, cs []changeToRecord) []bool {
	entries := make([]Change, len(cs))
	for i, c := range cs {
		entries[i] = Change{Header: changelog.Header{Writer: c.in.Writer}, ReferralID: c.after.ID, Type: c.t, Fields: c.fields, At: s.Now(), After: c.after}
	}
	published := s.log.Append(ctx, entries)
	var done []*intent
	for i, c := range cs {
		if published[i] && c.in.owned() {
			done = append(done, c.in)
		}
	}
	s.dropIntents(ctx, done)
	return published
}
