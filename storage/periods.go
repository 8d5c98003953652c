package storage

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// periods are the calendar periods of a referral's dates, stored with it
// (`periods` in the document) so statistics can group by them: the
// aggregation stages every target store shares have no date operators.
// Months are "2026-03", quarters "2026-Q1", both in UTC; a closing period
// is absent when the referral has no closing date.
type periods struct {
	CreatedMonth   string `bson:"createdMonth"`
	CreatedQuarter string `bson:"createdQuarter"`
	ClosingMonth   string `bson:"closingMonth,omitempty"`
	ClosingQuarter string `bson:"closingQuarter,omitempty"`
}

// month and quarter name the calendar periods of t in UTC.
func month(t time.Time) string { return t.UTC().Format("2006-01") }

func quarter(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())+2)/3)
}

func periodsOf(r *Referral) periods {
	p := periods{CreatedMonth: month(r.CreatedDateTime), CreatedQuarter: quarter(r.CreatedDateTime)}
	if r.Details != nil && r.Details.ClosingDate != nil {
		p.ClosingMonth, p.ClosingQuarter = month(*r.Details.ClosingDate), quarter(*r.Details.ClosingDate)
	}
	return p
}

// MarshalBSON writes the referral with its periods, so every referral
// inserted, however it is written, carries them.
func (r Referral) MarshalBSON() ([]byte, error) {
	type Fields Referral // the same fields without this method; exported, or bson skips it
	return bson.Marshal(struct {
		Fields  `bson:",inline"`
		Periods periods `bson:"periods"`
	}{Fields(r), periodsOf(&r)})
}

// closingPeriodsSet is what an update that sets the closing date to t also
// sets: the closing month and quarter.
func closingPeriodsSet(t time.Time) bson.D {
	return bson.D{{Key: "periods.closingMonth", Value: month(t)}, {Key: "periods.closingQuarter", Value: quarter(t)}}
}
