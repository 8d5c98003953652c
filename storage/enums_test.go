package storage

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestStoredIntegerEnums reads documents whose enums were exported as
// integer positions: 3 is Lost and 4 Archived, since the specification
// gives both position 3.
func TestStoredIntegerEnums(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []ReferralStatus{ReferralPending, ReferralActive, ReferralWon, ReferralLost, ReferralArchived}
	var docs []any
	for i, st := range statuses {
		docs = append(docs, bson.D{
			{Key: "_id", Value: string(st)}, {Key: "status", Value: int32(i)}, {Key: "referralSource", Value: int64(i % 4)},
			{Key: "createdDateTime", Value: t0.AddDate(0, 0, i)}, {Key: "updatedDateTime", Value: t0},
		})
	}
	if _, err := s.referrals.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.participants.InsertOne(ctx, bson.D{
		{Key: "_id", Value: "p1"}, {Key: "referralId", Value: "Won"}, {Key: "organizationId", Value: "o1"},
		{Key: "status", Value: 4.0}, {Key: "createdDateTime", Value: t0},
	}); err != nil {
		t.Fatal(err)
	}

	asc := Ascending
	page, err := s.Referrals(ctx, nil, &ReferralOrder{Field: OrderByCreatedDateTime, Direction: &asc}, PageArgs{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range page.Nodes() {
		if r.Status != statuses[i] || r.ReferralSource != referralSourcePositions[i%4] {
			t.Errorf("stored position %d read as %s/%s, want %s/%s", i, r.Status, r.ReferralSource, statuses[i], referralSourcePositions[i%4])
		}
	}
	parts, err := s.ParticipantsByReferral(ctx, []string{"Won"})
	if err != nil || len(parts["Won"]) != 1 || parts["Won"][0].Status != ParticipantMissed {
		t.Errorf("participant stored as 4.0: got %+v, %v; want Missed", parts["Won"], err)
	}

	t.Run("FilterMatchesPositions", func(t *testing.T) {
		n, err := s.CountReferrals(ctx, &ReferralFilter{Status: []ReferralStatus{ReferralLost, ReferralArchived}, ReferralSource: []ReferralSource{SourceP2P}})
		if err != nil || n != 1 {
			t.Errorf("count = %d, %v; want 1 (Lost stored as 3 with source 3)", n, err)
		}
	})
	for name, status := range map[string]any{"ErrPositionOutOfRange": 9, "ErrUnknownName": "Open", "ErrWrongType": true} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.referrals.InsertOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "status", Value: status}, {Key: "createdDateTime", Value: t0.AddDate(1, 0, 0)}}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ReferralsByID(ctx, []string{name}); err == nil {
				t.Errorf("status %v was read without error as %+v", status, got[name])
			}
		})
	}
}
