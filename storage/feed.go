package storage

import (
	"context"
)

// The change feed is the store's change log (package changelog) of
// Changes; this file is what the API reads of it: where it stands, its
// changes as they come, and where a subscription may resume. Its writers
// are the mutations, through recordChange.

// MaxResumeBack is how far back a subscription may resume: at most
// this many changes, of every organization, after its id. Catching up
// reads each of them, whoever they concern, so this bounds what one
// resume costs; an older id is CodeChangeIDExpired before any is read.
const MaxResumeBack = 10_000

// ChangeFeed names the mechanism FollowChanges uses.
func (s *Store) ChangeFeed() string { return s.log.Mechanism() }

// LatestChange returns the sequence number of the newest change
// published (the highest head: a process answers a write, or delivers
// its change, only once its head covers it), 0 when there is none.
func (s *Store) LatestChange(ctx context.Context) (int64, error) {
	return s.log.Latest(ctx)
}

// FollowChanges calls deliver, in sequence order and once each, with every
// change numbered after `after`, recorded by this process or any other
// sharing the store, until ctx ends (changelog.Log.Follow). One Store has
// one follower at a time.
func (s *Store) FollowChanges(ctx context.Context, after int64, deliver func(Change)) error {
	return s.log.Follow(ctx, after, deliver)
}

// CheckResume tells whether a subscription may resume after the change
// numbered `after`: CodeChangeIDExpired when more than MaxResumeBack
// changes were recorded since, when the feed no longer holds that change,
// or when it has no such change yet. Only the first of those is known
// before reading the change itself. The messages name no position: the
// feed's numbers count every organization's changes.
func (s *Store) CheckResume(ctx context.Context, after int64) error {
	head, err := s.LatestChange(ctx)
	if err != nil {
		return err
	}
	if after < head-MaxResumeBack {
		return Errorf(CodeChangeIDExpired, "a subscription resumes at most %d changes (of all organizations) after its id, and more have been recorded since that event; subscribe without a resume id and read the current state", MaxResumeBack)
	}
	if after > head {
		return Errorf(CodeChangeIDExpired, "this feed has no event with that id; subscribe without a resume id and read the current state")
	}
	// The change itself must still be held: the store may have dropped
	// older changes sooner (a capped collection trims by size too), and
	// then the changes after it may be gone as well.
	if _, held, err := s.log.Read(ctx, after); err != nil {
		return err
	} else if !held {
		return Errorf(CodeChangeIDExpired, "the feed no longer holds the event with that id, nor perhaps those after it; subscribe without a resume id and read the current state")
	}
	return nil
}

// ChangesBetween reads the changes numbered after `after` up to upTo, in
// order, in one selection by _id (point reads where the store answers
// nothing else from an index and the embedded read planner does not serve
// it): numbers with no change (skipped, or dropped since) are passed over.
// It serves subscriptions that resume from further back than a reader
// keeps in memory, a chunk at a time.
func (s *Store) ChangesBetween(ctx context.Context, after, upTo int64) ([]Change, error) {
	return s.log.Between(ctx, after, upTo)
}

// changesByKey reads the changes stored under keys, for the log.
func (s *Store) changesByKey(ctx context.Context, keys []string) (map[string]*Change, error) {
	return findByID(ctx, s, s.changes, keys, nil, s.idOnly(), func(c *Change) string { return c.Key })
}
