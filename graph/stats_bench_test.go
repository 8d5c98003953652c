package graph

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage"
)

// statsQuery is the benchmark's question: referrals by status and
// customer country, every measure but the extremes.
const statsQuery = `{ referralStats(groupBy: [STATUS, CUSTOMER_COUNTRY], first: 100) {
  groupCount groups { key { status customerCountry } measures { count won lost winRate dealValue { sum count missing average } } }
  total { count won lost winRate dealValue { sum count missing average } } } }`

// BenchmarkStats answers "referrals by status and country" at 200 and
// 2,000 referrals two ways in one run: `graphql` asks referralStats over
// HTTP (the store adds up); `driver` reads every matching referral through
// the driver and adds up in Go, the baseline. It reports the MongoDB
// commands per operation, the same at every size. Under -short (CI runs
// every benchmark once) only 200.
func BenchmarkStats(b *testing.B) {
	sizes := []int{200, 2000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	client, err := mongo.Connect(options.Client().ApplyURI(testURI).SetMonitor(commands.monitor()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	for _, n := range sizes {
		e := newEnv(b, n)
		db := client.Database(e.db)
		b.Run(fmt.Sprintf("N=%d/variant=graphql", n), func(b *testing.B) {
			commands.take(e.db)
			for b.Loop() {
				var got struct{ ReferralStats struct{ GroupCount int } }
				e.post(b, statsQuery, nil).mustData(b, &got)
				if got.ReferralStats.GroupCount == 0 {
					b.Fatal("no groups")
				}
			}
			b.ReportMetric(float64(len(commands.take(e.db)))/float64(b.N), "cmds/op")
		})
		b.Run(fmt.Sprintf("N=%d/variant=driver", n), func(b *testing.B) {
			commands.take(e.db)
			for b.Loop() {
				if len(sumInGo(b, db)) == 0 {
					b.Fatal("no groups")
				}
			}
			b.ReportMetric(float64(len(commands.take(e.db)))/float64(b.N), "cmds/op")
		})
	}
}

// sumInGo is the baseline: every referral read (the fields the question
// needs) and added up by status and country.
func sumInGo(b *testing.B, db *mongo.Database) map[[2]string]*storage.StatsMeasures {
	type doc struct {
		Status          storage.ReferralStatus `bson:"status"`
		CustomerProfile struct {
			Address struct{ Country string } `bson:"address"`
		} `bson:"customerProfile"`
		Details struct {
			DealValue *int64 `bson:"dealValueCents"`
		} `bson:"details"`
	}
	cur, err := db.Collection("referrals").Find(b.Context(), bson.D{}, options.Find().SetProjection(bson.D{
		{Key: "status", Value: 1}, {Key: "customerProfile.address.country", Value: 1}, {Key: "details.dealValueCents", Value: 1},
	}))
	if err != nil {
		b.Fatal(err)
	}
	groups := map[[2]string]*storage.StatsMeasures{}
	for cur.Next(b.Context()) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			b.Fatal(err)
		}
		k := [2]string{string(d.Status), d.CustomerProfile.Address.Country}
		m := groups[k]
		if m == nil {
			m = &storage.StatsMeasures{}
			groups[k] = m
		}
		m.Count++
		switch d.Status {
		case storage.ReferralWon:
			m.Won++
		case storage.ReferralLost:
			m.Lost++
		}
		if d.Details.DealValue == nil {
			m.DealValue.Missing++
		} else {
			m.DealValue.Count++
			m.DealValue.AddValue(storage.Money(*d.Details.DealValue))
		}
	}
	if err := cur.Err(); err != nil {
		b.Fatal(err)
	}
	return groups
}
