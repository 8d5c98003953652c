package storage

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// detectChangeStreams reports whether the deployment offers change streams
// (replica sets, sharded clusters, Atlas). Standalone servers and FerretDB
// refuse to open one.
func (s *Store) detectChangeStreams(ctx context.Context) bool {
	cs, err := s.referrals.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		return false
	}
	_ = cs.Close(ctx)
	return true
}

// ChangeFeed names the mechanism FollowChanges uses on this deployment.
func (s *Store) ChangeFeed() string {
	if s.changeStreams {
		return "change stream on referrals"
	}
	return "tailable cursor on the capped changes collection"
}

// streamEvent is the part of a change stream event we read.
type streamEvent struct {
	OperationType string `bson:"operationType"`
	DocumentKey   struct {
		ID string `bson:"_id"`
	} `bson:"documentKey"`
	WallTime    time.Time      `bson:"wallTime"`
	ClusterTime bson.Timestamp `bson:"clusterTime"`
	Update      struct {
		UpdatedFields bson.Raw `bson:"updatedFields"`
		RemovedFields []string `bson:"removedFields"`
	} `bson:"updateDescription"`
	// FullDocument is the referral after the change for inserts and
	// replacements, and as it is when the event is read for updates
	// (updateLookup: the portable choice; exact post-images need
	// changeStreamPreAndPostImages on the collection).
	FullDocument *Referral `bson:"fullDocument"`
}

// followStream delivers the changes of the referrals collection as a
// change stream reports them, so writes made outside this API are seen
// too. It resumes after the last event when the stream breaks.
func (s *Store) followStream(ctx context.Context, deliver func(Change)) error {
	var resume bson.Raw
	for ctx.Err() == nil {
		opts := options.ChangeStream().SetMaxAwaitTime(awaitTime).SetFullDocument(options.UpdateLookup)
		if resume != nil {
			opts.SetResumeAfter(resume)
		}
		cs, err := s.referrals.Watch(ctx, mongo.Pipeline{}, opts)
		if err != nil {
			s.logger.WarnContext(ctx, "open the change stream", "error", err)
		} else {
			for cs.Next(ctx) {
				resume = cs.ResumeToken()
				var ev streamEvent
				if err := cs.Decode(&ev); err != nil {
					s.logger.ErrorContext(ctx, "decode a change event", "error", err)
					continue
				}
				if c, ok := changeFromStream(ev); ok {
					deliver(c)
				}
			}
			_ = cs.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
	return nil
}

// changeFromStream turns a change stream event into a Change, naming the
// fields as the API does; deletions and events without a key are skipped.
func changeFromStream(ev streamEvent) (Change, bool) {
	at := ev.WallTime
	if at.IsZero() {
		at = time.Unix(int64(ev.ClusterTime.T), 0)
	}
	c := Change{ID: bson.NewObjectID(), ReferralID: ev.DocumentKey.ID, At: at.UTC(), Fields: []string{}, After: ev.FullDocument}
	switch ev.OperationType {
	case "insert":
		c.Type, c.Fields = ChangeCreated, []string{"referralSource", "customerProfile", "details", "status"}
	case "replace":
		c.Type = ChangeUpdated
	case "update":
		var paths []string
		if elems, err := ev.Update.UpdatedFields.Elements(); err == nil {
			for _, e := range elems {
				paths = append(paths, e.Key())
			}
		}
		c.Type, c.Fields = classifyUpdate(append(paths, ev.Update.RemovedFields...))
	default:
		return Change{}, false
	}
	return c, c.ReferralID != ""
}

// classifyUpdate names the kind of an update from the document paths it
// touched, and the API fields those paths are.
func classifyUpdate(paths []string) (ChangeType, []string) {
	t := ChangeUpdated
	var fields []string
	add := func(f string) {
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	for _, p := range paths {
		switch {
		case p == "version" || p == "updatedDateTime":
		case strings.HasPrefix(p, "participation"):
			t = ChangeParticipant
			add("participants")
		case p == "status" || p == "statusReason":
			if t != ChangeParticipant {
				t = ChangeStatus
			}
			add(p)
		case strings.HasPrefix(p, "details.dealValueCents"):
			add("details.dealValue")
		default:
			add(p)
		}
	}
	if fields == nil {
		fields = []string{}
	}
	return t, fields
}
