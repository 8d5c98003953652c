package storage

import (
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestClassifyUpdate covers the mapping from a change stream's update
// description to the API's change types and field names. (The stream
// itself needs a replica set, which the embedded store is not.)
func TestClassifyUpdate(t *testing.T) {
	tests := []struct {
		paths      []string
		wantType   ChangeType
		wantFields []string
	}{
		{[]string{"customerProfile.name", "details.dealValueCents", "version", "updatedDateTime"}, ChangeUpdated, []string{"customerProfile.name", "details.dealValue"}},
		{[]string{"status", "statusReason", "version", "updatedDateTime"}, ChangeStatus, []string{"status", "statusReason"}},
		{[]string{"participation", "version"}, ChangeParticipant, []string{"participants"}},
		{[]string{"participation.1.status", "participation.1.orgStatus"}, ChangeParticipant, []string{"participants"}},
		{[]string{"version"}, ChangeUpdated, []string{}},
	}
	for _, tt := range tests {
		gotType, gotFields := classifyUpdate(tt.paths)
		if gotType != tt.wantType || !slices.Equal(gotFields, tt.wantFields) {
			t.Errorf("classifyUpdate(%v) = %s %v, want %s %v", tt.paths, gotType, gotFields, tt.wantType, tt.wantFields)
		}
	}
	updated, _ := bson.Marshal(bson.D{{Key: "status", Value: "Won"}, {Key: "version", Value: 3}})
	ev := streamEvent{OperationType: "update"}
	ev.DocumentKey.ID = "r1"
	ev.Update.UpdatedFields = updated
	if c, ok := changeFromStream(ev); !ok || c.Type != ChangeStatus || c.ReferralID != "r1" || !slices.Equal(c.Fields, []string{"status"}) {
		t.Errorf("changeFromStream = %+v, %v", c, ok)
	}
	if _, ok := changeFromStream(streamEvent{OperationType: "delete"}); ok {
		t.Error("a deletion became a change")
	}
}

// TestEmbeddedStoreHasNoChangeStreams pins the detection on the store the
// tests run against: FerretDB answers $changeStream with NotImplemented.
func TestEmbeddedStoreHasNoChangeStreams(t *testing.T) {
	s := newTestStore(t)
	if s.changeStreams || s.ChangeFeed() != "tailable cursor on the capped changes collection" {
		t.Errorf("embedded store: change streams detected (%s)", s.ChangeFeed())
	}
}
