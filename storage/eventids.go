package storage

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"referrals/storage/retry"
)

// Event ids are sealed, not encoded: an id is the change's sequence number
// encrypted and authenticated (AES-256-GCM) for one audience, an
// organization or the admins, which is the additional data. So an id tells
// its holder nothing (not the position in the feed, which counts the
// changes of every organization, nor the order of two ids), and only the
// server makes one: an id that was forged, altered, or handed to another
// audience does not open. The nonce is derived from what is sealed
// (HMAC-SHA256 of the number and the audience), so one event has one id
// per audience however often it is handed out, and no two different ids
// share a nonce.
//
// The secret lives in the database (the `keys` collection), so every
// process on one database, and every restart, makes and accepts the same
// ids. Whoever reads the database can make ids; they can read the changes
// themselves.
const (
	// eventIDSecretKey is the _id of the secret in the keys collection.
	eventIDSecretKey = "eventIds"
	// eventIDSecretSize is the secret's length: an AES-256 key, then the
	// HMAC key that derives nonces.
	eventIDSecretSize = 64
)

// EventIDs makes and opens the ids of change events, which subscriptions
// resume after.
type EventIDs struct {
	aead cipher.AEAD
	// macs holds keyed HMACs that derive nonces, reused: each event is
	// encoded for each subscriber, and keying one anew costs more than
	// the rest of an id.
	macs sync.Pool
}

func newEventIDs(secret []byte) (*EventIDs, error) {
	if len(secret) != eventIDSecretSize {
		return nil, fmt.Errorf("the event id secret has %d bytes, want %d", len(secret), eventIDSecretSize)
	}
	block, err := aes.NewCipher(secret[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonceKey := secret[32:]
	return &EventIDs{aead: aead, macs: sync.Pool{New: func() any { return hmac.New(sha256.New, nonceKey) }}}, nil
}

// audience is who an id is handed to: a partner's organization, or the
// admins (every admin sees every event). An organization's is prefixed,
// so no organization id reads as the admins'.
func audience(c Caller) []byte {
	if c.IsAdmin() {
		return []byte("admin")
	}
	return []byte("org:" + c.OrganizationID)
}

// Encode returns the id of the change numbered seq as handed to c's
// audience.
func (e *EventIDs) Encode(c Caller, seq int64) string {
	aud := audience(c)
	pos := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(seq))
	mac := e.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(pos) // fixed length: pos and aud cannot run into each other
	mac.Write(aud)
	var sum [sha256.Size]byte
	id := mac.Sum(sum[:0])[:e.aead.NonceSize()]
	e.macs.Put(mac)
	id = e.aead.Seal(id, id, pos, aud) // the nonce, then the sealed position
	return base64.RawURLEncoding.EncodeToString(id)
}

// Decode returns the sequence number of an id Encode made for c's
// audience; anything else (a forged or altered id, another audience's, an
// id of another database, an earlier version's) is CodeBadUserInput about
// field, the same for all, so that the answer tells nothing about whose
// id it was.
func (e *EventIDs) Decode(c Caller, field, id string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	n := e.aead.NonceSize()
	if err == nil && len(b) == n+8+e.aead.Overhead() {
		if pos, err := e.aead.Open(nil, b[:n], b[n:], audience(c)); err == nil {
			if seq := int64(binary.BigEndian.Uint64(pos)); seq >= 1 {
				return seq, nil
			}
		}
	}
	return 0, badInput(field, "not an event id this feed handed to your organization; pass the id of an event you received")
}

// EventIDs returns the store's event ids, ready once Prepare has run.
func (s *Store) EventIDs() *EventIDs { return s.eventIDs }

// loadEventIDs reads the event id secret, storing a new random one first
// if the database has none; when processes start together, the first
// insert wins and all read it.
func (s *Store) loadEventIDs(ctx context.Context) error {
	fresh := make([]byte, eventIDSecretSize)
	_, _ = rand.Read(fresh) // crypto/rand never fails
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.keys.InsertOne(ctx, bson.D{{Key: "_id", Value: eventIDSecretKey}, {Key: "secret", Value: fresh}})
		if mongo.IsDuplicateKeyError(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store the event id secret: %w", err)
	}
	var doc struct {
		Secret []byte `bson:"secret"`
	}
	if err := s.keys.FindOne(ctx, bson.D{{Key: "_id", Value: eventIDSecretKey}}).Decode(&doc); err != nil {
		return fmt.Errorf("read the event id secret: %w", err)
	}
	ids, err := newEventIDs(doc.Secret)
	if err != nil {
		return fmt.Errorf("read the event id secret: %w", err)
	}
	s.eventIDs = ids
	return nil
}
