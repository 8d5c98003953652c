package graph

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage"
)

// cutQueries makes the embedded store cut n queries short with deadlines,
// as the change feed's awaitData getMores do once a second, but about once
// a millisecond: it tails a capped collection of db with an awaitData
// cursor whose getMores wait 1 ms each, during which FerretDB reruns the
// cursor's query until the deadline interrupts it. Their errors are not
// the test's concern: what matters is whether the store survives them.
func cutQueries(t *testing.T, db string, n int) {
	t.Helper()
	ctx := t.Context()
	client, err := mongo.Connect(options.Client().ApplyURI(testURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database(db).Collection("deadlines")
	err = client.Database(db).CreateCollection(ctx, coll.Name(), options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	// FerretDB ends a tailable cursor whose first batch is empty.
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	opts := options.Find().SetCursorType(options.TailableAwait).SetBatchSize(1).SetMaxAwaitTime(time.Millisecond)
	for done := 0; done < n; {
		cur, err := coll.Find(ctx, bson.D{}, opts)
		if err != nil {
			done++
			continue
		}
		for ; done < n && cur.Err() == nil && cur.ID() != 0; done++ {
			cur.TryNext(ctx) // one getMore once the first batch is read
		}
		_ = cur.Close(context.Background())
	}
}

// TestConcurrentCreatesAllLand has four clients create 50 referrals each
// at once through the API, after many of the embedded store's queries were
// cut short by deadlines. Every create must succeed, and every one must
// reach the change feed once.
func TestConcurrentCreatesAllLand(t *testing.T) {
	const writers, each = 4, 50
	e := newEnv(t, 0)
	changes := subscribeBroker(t, e, nil)
	cutQueries(t, e.db, 1000)

	var mu sync.Mutex
	var ids []string
	failures := map[string]int{} // error message → creates that failed with it
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp := e.post(t, `mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }`, map[string]any{"input": validInput()})
				var d struct{ CreateReferral struct{ ID string } }
				err := json.Unmarshal(resp.Data, &d)
				mu.Lock()
				switch {
				case len(resp.Errors) > 0:
					failures[resp.Errors[0].Message]++
				case err != nil || d.CreateReferral.ID == "":
					failures["no id in "+string(resp.raw)]++
				default:
					ids = append(ids, d.CreateReferral.ID)
				}
				mu.Unlock()
			}
		}()
	}
	written := make(chan struct{})
	go func() { wg.Wait(); close(written) }()

	// Changes are read while the writers run, as a live subscriber would.
	// The budget only keeps a broken feed from hanging the test: a change
	// normally arrives well within a second of its write.
	budget := time.After(60 * time.Second)
	got := map[string]int{}
	for done := false; !done || len(got) < len(ids); {
		select {
		case c, ok := <-changes:
			if !ok {
				t.Fatalf("the feed dropped the subscriber after %d creations", len(got))
			}
			if c.Type == storage.ChangeCreated {
				got[c.ReferralID]++
			}
		case <-written:
			written, done = nil, true
			for msg, n := range failures {
				t.Errorf("createReferral failed %d times: %s", n, msg)
			}
		case <-budget:
			t.Fatalf("%d of %d creations reached the change feed", len(got), len(ids))
		}
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("the creation of %s reached the feed %d times, want once", id, got[id])
		}
	}
}
