package live

import (
	"context"

	"referrals/storage"
)

// Feed is what the broker reads: the store's changes as they happen,
// those a resuming subscription missed, and the ids events are handed out
// with. *storage.Store implements it.
type Feed interface {
	EventIDs() *storage.EventIDs
	LatestChange(ctx context.Context) (int64, error)
	FollowChanges(ctx context.Context, after int64, deliver func(storage.Change)) error
	CheckResume(ctx context.Context, after int64) error
	ChangesBetween(ctx context.Context, after, upTo int64) ([]storage.Change, error)
}

// Event is a change as one subscriber receives it: the referral as it is
// after the change and as the subscriber may see it, the fields it may
// know changed, and the change's opaque id for the subscriber's audience,
// which that subscriber resumes after.
type Event struct {
	storage.Change
	ID       string
	Referral *storage.Referral
}

// EventFor is change c as a subscription of caller with filter receives
// it, and false when it does not receive it. Subscriptions and webhooks
// both send what it gives.
func EventFor(caller storage.Caller, filter *storage.ReferralFilter, ids *storage.EventIDs, c storage.Change) (*Event, bool) {
	if c.After == nil {
		return nil, false
	}
	view, visible := storage.ViewFor(caller, c.After)
	if !visible || !filter.Matches(view) {
		return nil, false
	}
	then := *view // the change's referral is shared by every subscriber: mark a copy
	then.AtChange = true
	ev := &Event{Change: c, ID: ids.Encode(caller, c.Seq), Referral: &then}
	ev.Fields = storage.ChangedFieldsFor(caller, c.After, c.Fields)
	return ev, true
}

// ResumePoint returns the sequence number a subscription of caller
// resumes after: its `after` argument, else (over SSE) the Last-Event-ID
// header, else nil for a new subscription. Only an id handed to the
// caller's audience is taken.
func ResumePoint(caller storage.Caller, ids *storage.EventIDs, after *string, lastEventID string) (*int64, error) {
	field := "after"
	if after == nil {
		if lastEventID == "" {
			return nil, nil
		}
		after, field = &lastEventID, "Last-Event-ID"
	}
	seq, err := ids.Decode(caller, field, *after)
	if err != nil {
		return nil, err
	}
	return &seq, nil
}

// Stream is told what the transport needs beyond an event's data: the id
// of each event as it is sent, and why the events ended when they end
// with an error.
type Stream interface {
	Sending(id string)
	End(err error)
}

// Events subscribes ctx's caller to the changes filter selects after from
// (nil: from now) and sends them as events on the returned channel, which
// closes when ctx ends or the subscription fails (stream is told why).
// A subscription that cannot start is an error before any event.
func (b *Broker) Events(ctx context.Context, filter *storage.ReferralFilter, from *int64, requestID string, stream Stream) (<-chan *Event, error) {
	sub, err := b.Subscribe(ctx, from, requestID)
	if err != nil {
		return nil, err
	}
	caller, ids := storage.CallerFrom(ctx), b.EventIDs()
	out := make(chan *Event)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			changes, err := sub.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					stream.End(err)
				}
				return
			}
			for _, c := range changes {
				ev, ok := EventFor(caller, filter, ids, c)
				if !ok {
					continue
				}
				stream.Sending(ev.ID)
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
