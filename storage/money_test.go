package storage

import (
	"math"
	"testing"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in   string
		want Money
		ok   bool
	}{
		{"0", 0, true}, {"1250", 125000, true}, {"1250.5", 125050, true}, {"1250.05", 125005, true},
		{"-3.25", -325, true}, {"92233720368547758", 9223372036854775800, true},
		{"", 0, false}, {".5", 0, false}, {"5.", 0, false}, {"1.005", 0, false}, {"1e3", 0, false},
		{"1,000", 0, false}, {" 1", 0, false}, {"+1", 0, false}, {"--1", 0, false}, {"92233720368547759", 0, false},
		{"92233720368547758.07", math.MaxInt64, true}, {"92233720368547758.08", 0, false}, {"-92233720368547758.08", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseMoney(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && ErrorCodeOf(err) != CodeBadUserInput {
			t.Errorf("ParseMoney(%q) error code = %s, want BAD_USER_INPUT", tt.in, ErrorCodeOf(err))
		}
	}
	for m, want := range map[Money]string{0: "0.00", 5: "0.05", 125050: "1250.50", -325: "-3.25", -5: "-0.05"} {
		if got := m.String(); got != want {
			t.Errorf("Money(%d).String() = %q, want %q", int64(m), got, want)
		}
		if back, err := ParseMoney(want); err != nil || back != m {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", want, back, err, int64(m))
		}
	}
}

func TestDisplayName(t *testing.T) {
	for id, want := range map[string]string{
		"Dynamics365forSales": "Dynamics 365 for Sales", "IPServices(ISV)": "IP Services (ISV)",
		"SQLServerUpgrade": "SQL Server Upgrade", "ConsultingAndProfessional": "Consulting and Professional",
		"PowerBI": "Power BI", "SharePoint": "SharePoint", "Communications & Media": "Communications & Media",
	} {
		if got := displayName(id); got != want {
			t.Errorf("displayName(%q) = %q, want %q", id, got, want)
		}
	}
}
