package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Webhook is a URL that receives the referral changes its owner may see,
// stored in `webhooks`. Package webhooks delivers to it; this file keeps
// webhooks and their deliveries.
type Webhook struct {
	ID string `bson:"_id"`
	// OrganizationID owns the webhook; "" for an admin's, which receive
	// every change.
	OrganizationID string       `bson:"organizationId"`
	URL            string       `bson:"url"`
	Events         []ChangeType `bson:"events"` // none: every type
	// Filter is the ReferralFilter the changes' referrals must match, as
	// for a subscription; nil matches all.
	Filter          *ReferralFilter `bson:"filter,omitempty"`
	Description     *string         `bson:"description,omitempty"`
	Enabled         bool            `bson:"enabled"`
	DisabledReason  *string         `bson:"disabledReason,omitempty"`
	CreatedDateTime time.Time       `bson:"createdDateTime"`
	// Secrets sign deliveries, newest first; a rotated-out one keeps
	// signing until its ExpiresAt.
	Secrets []WebhookSecret `bson:"secrets"`
	// Cursor is the sequence number of the last change the webhook's
	// deliveries were made for (see package webhooks).
	Cursor int64 `bson:"cursor"`
	// FailingSince is when the oldest failure not followed by a success
	// happened.
	FailingSince *time.Time `bson:"failingSince,omitempty"`
}

// WebhookSecret is one signing secret of a webhook (whsec_ + base64).
type WebhookSecret struct {
	Secret    string     `bson:"secret"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// maxWebhooksPerOwner bounds the webhooks of one organization (or of the
// admins): each costs a rendering of every change it may see.
const maxWebhooksPerOwner = 20

// ErrNotFound is returned for a webhook or delivery that does not exist
// or is not the caller's to see.
var ErrNotFound = errors.New("not found")

// webhookScope is the webhooks c manages: an admin all, a partner its
// organization's.
func webhookScope(c Caller) bson.D {
	if c.IsAdmin() {
		return bson.D{}
	}
	return bson.D{{Key: "organizationId", Value: c.OrganizationID}}
}

// ownsWebhook reports whether c manages w.
func ownsWebhook(c Caller, w *Webhook) bool {
	return c.IsAdmin() || (c.OrganizationID != "" && w.OrganizationID == c.OrganizationID)
}

// CreateWebhook stores w, owned by ctx's caller, with its cursor at the
// newest change: it receives the changes recorded after it.
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	c := CallerFrom(ctx)
	if !c.IsAdmin() && c.OrganizationID == "" {
		return Errorf(CodeForbidden, "only an organization's partners or an admin may register webhooks")
	}
	w.OrganizationID = c.OrganizationID
	if c.IsAdmin() {
		w.OrganizationID = ""
	}
	if err := CheckWebhookDescription(w.Description); err != nil {
		return err
	}
	n, err := s.countDocuments(ctx, s.webhooks, bson.D{{Key: "organizationId", Value: w.OrganizationID}})
	if err != nil {
		return err
	}
	if n >= maxWebhooksPerOwner {
		return Errorf(CodeBadUserInput, "at most %d webhooks per organization: delete one first", maxWebhooksPerOwner)
	}
	head, err := s.LatestChange(ctx)
	if err != nil {
		return err
	}
	w.Cursor, w.CreatedDateTime, w.Enabled = head, s.Now(), true
	if _, err := s.webhooks.InsertOne(ctx, w); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// Webhook returns the webhook id if ctx's caller manages it, else
// ErrNotFound (whether it exists or not).
func (s *Store) Webhook(ctx context.Context, id string) (*Webhook, error) {
	var w Webhook
	err := s.webhooks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&w)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook: %w", err)
	}
	if !ownsWebhook(CallerFrom(ctx), &w) {
		return nil, ErrNotFound
	}
	return &w, nil
}

// WebhookPage is a page of webhooks.
type WebhookPage struct {
	Items    []*Webhook
	Cursors  []string
	PageInfo PageInfo
}

// Webhooks pages through the webhooks ctx's caller manages, oldest first.
func (s *Store) Webhooks(ctx context.Context, args PageArgs) (*WebhookPage, error) {
	p, err := pageQuery[Webhook]{
		store: s, coll: s.webhooks, filter: webhookScope(CallerFrom(ctx)),
		order: sortOrder{Field: "createdDateTime"}, args: args,
		key: func(w *Webhook) (any, string) { return w.CreatedDateTime, w.ID },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return &WebhookPage{Items: p.items, Cursors: p.cursors, PageInfo: p.info}, nil
}

// AllWebhooks returns every webhook, for delivery.
func (s *Store) AllWebhooks(ctx context.Context) ([]*Webhook, error) {
	cur, err := s.webhooks.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("find webhooks: %w", err)
	}
	var out []*Webhook
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	return out, nil
}

// WebhookPatch holds the parts of a webhook to change; nil keeps one.
type WebhookPatch struct {
	URL         *string
	Events      *[]ChangeType
	Filter      *ReferralFilter // replaces the filter when SetFilter
	SetFilter   bool
	Description *string
	Enabled     *bool
}

// maxWebhookDescription bounds a webhook's description, in characters.
const maxWebhookDescription = 1000

// CheckWebhookDescription refuses a description over its bound, or with
// what stored text may not hold (see check.characters): it is free text
// with lines, as a referral's notes.
func CheckWebhookDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > maxWebhookDescription {
		return badInput("input.description", "at most %d characters, got %d", maxWebhookDescription, utf8.RuneCountInString(*d))
	}
	var c check
	c.multiline("input.description", d, maxWebhookDescription)
	if c.err != nil {
		return c.err
	}
	return nil
}

// UpdateWebhook changes the webhook id that ctx's caller manages and
// returns it as it is then. Enabling a disabled webhook clears its
// disabled reason and moves its cursor to the newest change: what was
// recorded while it was disabled is not delivered.
func (s *Store) UpdateWebhook(ctx context.Context, id string, p WebhookPatch) (*Webhook, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := CheckWebhookDescription(p.Description); err != nil {
		return nil, err
	}
	set, unset := bson.D{}, []string{}
	if p.URL != nil {
		set = append(set, bson.E{Key: "url", Value: *p.URL})
	}
	if p.Events != nil {
		set = append(set, bson.E{Key: "events", Value: *p.Events})
	}
	if p.SetFilter {
		if p.Filter != nil {
			set = append(set, bson.E{Key: "filter", Value: p.Filter})
		} else {
			unset = append(unset, "filter")
		}
	}
	if p.Description != nil {
		set = append(set, bson.E{Key: "description", Value: *p.Description})
	}
	if p.Enabled != nil {
		set = append(set, bson.E{Key: "enabled", Value: *p.Enabled})
		unset = append(unset, "disabledReason", "failingSince")
		if *p.Enabled && !w.Enabled {
			head, err := s.LatestChange(ctx)
			if err != nil {
				return nil, err
			}
			set = append(set, bson.E{Key: "cursor", Value: head})
		}
	}
	if len(set) == 0 && len(unset) == 0 {
		return w, nil // nothing given: nothing changes
	}
	if err := s.SetWebhookState(ctx, id, set, unset...); err != nil {
		return nil, err
	}
	return s.Webhook(ctx, id)
}

// webhookSecretOverlap is how long a rotated-out secret keeps signing.
const webhookSecretOverlap = 24 * time.Hour

// RotateWebhookSecret makes secret the signing secret of the webhook id
// that ctx's caller manages; the one before keeps signing for 24 hours,
// older ones stop.
func (s *Store) RotateWebhookSecret(ctx context.Context, id, secret string) (*Webhook, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	until := s.Now().Add(webhookSecretOverlap)
	secrets := []WebhookSecret{{Secret: secret}}
	if len(w.Secrets) > 0 {
		prev := w.Secrets[0]
		prev.ExpiresAt = &until
		secrets = append(secrets, prev)
	}
	if err := s.SetWebhookState(ctx, id, bson.D{{Key: "secrets", Value: secrets}}); err != nil {
		return nil, err
	}
	w.Secrets = secrets
	return w, nil
}

// SetWebhookState sets and unsets fields of webhook id, for whoever acts
// for no caller (the deliverer) or has checked the caller already.
func (s *Store) SetWebhookState(ctx context.Context, id string, set bson.D, unset ...string) error {
	update := bson.D{}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	if len(unset) > 0 {
		u := bson.D{}
		for _, f := range unset {
			u = append(u, bson.E{Key: f, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: u})
	}
	_, err := s.webhooks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil {
		return fmt.Errorf("update webhook %s: %w", id, err)
	}
	return nil
}

// AdvanceWebhookCursor moves the webhook's cursor to seq unless it is
// further already: several processes may make the same deliveries.
func (s *Store) AdvanceWebhookCursor(ctx context.Context, id string, seq int64) error {
	_, err := s.webhooks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$max", Value: bson.D{{Key: "cursor", Value: seq}}}})
	if err != nil {
		return fmt.Errorf("advance webhook %s: %w", id, err)
	}
	return nil
}

// DeleteWebhook deletes the webhook id that ctx's caller manages. Its
// deliveries stay in the log until the webhook's id is forgotten; open
// ones are not attempted any more.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := s.Webhook(ctx, id); err != nil {
		return err
	}
	if _, err := s.webhooks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}
