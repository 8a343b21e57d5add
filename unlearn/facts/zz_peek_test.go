package facts

import (
	"fmt"
	"testing"
)

func TestPeek(t *testing.T) {
	ex, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	ents := map[string]int{}
	seen := map[string]bool{}
	for _, e := range ex {
		counts[e.Split+"/"+e.Kind]++
		counts[e.Split+"/"+e.Kind+"/"+e.Fact]++
		if !seen[e.Kind+e.Entity] {
			seen[e.Kind+e.Entity] = true
			ents[e.Split+"/"+e.Kind]++
		}
	}
	fmt.Println(len(ex), counts, ents)
	for i, e := range ex {
		if i%97 == 0 || e.Entity == "France" || e.Entity == "Iron" || e.Entity == "Jamaica" || e.Entity == "Hydrogen" {
			fmt.Printf("%q\n", e)
		}
	}
	els, _ := ParseElements(mustOpen(ElementsFile), "e")
	for _, e := range els {
		if e.Number > 100 || e.Number < 3 || e.Number == 43 {
			fmt.Printf("%d %s %q %v %v %.60q\n", e.Number, e.Name, e.Symbol, e.Weight, e.WeightEstimated, e.Description)
		}
	}
}

func mustOpen(n string) interface{ Read([]byte) (int, error) } {
	f, err := Corpus().Open(n)
	if err != nil {
		panic(err)
	}
	return f
}
