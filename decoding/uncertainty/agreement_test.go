package uncertainty

import (
	"math"
	"testing"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  New\tYork \n City ": "new york city",
		"PARIS":                "paris",
		"Ça va":                "ça va",
		"":                     "",
		"a, b.":                "a, b.",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgree(t *testing.T) {
	for _, c := range []struct {
		name    string
		answers []string
		want    Agreement
	}{
		// Classes paris ×3, lyon ×2, marseille ×1: 3 + 1 equal pairs of 15.
		{"three classes", []string{"Paris", " paris ", "Lyon", "PARIS", "lyon", "Marseille"},
			Agreement{Rate: 4.0 / 15, Majority: "Paris", MajorityCount: 3, MajorityFrac: 0.5, Distinct: 3}},
		// Equal classes: the one seen first wins.
		{"tie", []string{"b", "a", "A", "B "},
			Agreement{Rate: 2.0 / 6, Majority: "b", MajorityCount: 2, MajorityFrac: 0.5, Distinct: 2}},
		{"unanimous", []string{"42", "42", " 42", "42\n"},
			Agreement{Rate: 1, Majority: "42", MajorityCount: 4, MajorityFrac: 1, Distinct: 1}},
		{"all different", []string{"a", "b", "c"},
			Agreement{Rate: 0, Majority: "a", MajorityCount: 1, MajorityFrac: 1.0 / 3, Distinct: 3}},
		{"one answer", []string{"x"},
			Agreement{Rate: math.NaN(), Majority: "x", MajorityCount: 1, MajorityFrac: 1, Distinct: 1}},
		{"none", nil, Agreement{Rate: math.NaN(), MajorityFrac: math.NaN()}},
	} {
		got := Agree(c.answers)
		same := got.Majority == c.want.Majority && got.MajorityCount == c.want.MajorityCount && got.Distinct == c.want.Distinct &&
			closeTo(got.Rate, c.want.Rate, 1e-15) && closeTo(got.MajorityFrac, c.want.MajorityFrac, 1e-15)
		if !same {
			t.Errorf("%s: Agree = %+v, want %+v", c.name, got, c.want)
		}
	}
}
