package tokenizer

import (
	"slices"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// byteLevelTokenizers can encode any text losslessly. Qwen3 normalizes to
// NFC first, so it gives back the NFC form of the text.
var byteLevelTokenizers = []struct {
	name string
	nfc  bool
}{{"gpt2", false}, {"llama3", false}, {"qwen3", true}}

var roundTripSeeds = []string{
	"", " ", "Hello, world!", "  leading spaces,\ttabs\t\tand\n\nnewlines   trailing   ",
	"Emojis 🤗🚀👩‍👩‍👧‍👦 and flags 🇫🇷", "é vs é, nbsp\u00a0here, CRLF\r\nline",
	"<|endoftext|><|begin_of_text|> <|im_start|>user", "\x00\x01 control", "日本語のテキスト 中文 한국어",
	"I'LL it'ſ DON'T 1234567 ½ Ⅻ", "def f(x):\n    return x**2  # comment\n\n\n\tpass",
}

// FuzzRoundTrip checks Decode(Encode(s)) == s on valid UTF-8, with and
// without BPE-dropout.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add(s, uint64(1))
	}
	toks := make([]*Tokenizer, len(byteLevelTokenizers))
	for i, bt := range byteLevelTokenizers {
		toks[i] = testTokenizer(f, bt.name)
	}
	f.Fuzz(func(t *testing.T, s string, seed uint64) {
		if !utf8.ValidString(s) {
			t.Skip("the property holds for valid UTF-8")
		}
		for i, bt := range byteLevelTokenizers {
			want := s
			if bt.nfc {
				want = norm.NFC.String(s)
			}
			for _, p := range []float64{0, 0.5} {
				enc, err := toks[i].EncodeDropout(s, false, p, seed)
				if err != nil {
					t.Fatalf("%s: %v", bt.name, err)
				}
				got, err := toks[i].Decode(enc.IDs, false)
				if err != nil {
					t.Fatalf("%s: %v", bt.name, err)
				}
				if got != want {
					t.Fatalf("%s p=%g: Decode(Encode(%q)) = %q", bt.name, p, s, got)
				}
			}
		}
	})
}

func TestDropoutZeroEqualsEncode(t *testing.T) {
	for _, name := range []string{"gpt2", "llama3", "qwen3", "mistral", "llama2"} {
		tok := testTokenizer(t, name)
		for _, c := range loadGolden(t)[name] {
			enc, err := tok.Encode(c.Text, true)
			if err != nil {
				t.Fatal(err)
			}
			drop, err := tok.EncodeDropout(c.Text, true, 0, 42)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(enc.IDs, drop.IDs) {
				t.Errorf("%s %q: p=0 gives %v, Encode gives %v", name, c.Text, drop.IDs, enc.IDs)
			}
		}
	}
}

func TestDropoutProperties(t *testing.T) {
	tok := testTokenizer(t, "llama3")
	text := "The quick brown fox jumps over the lazy dog. Unbelievably, tokenization matters."
	base, err := tok.Encode(text, false)
	if err != nil {
		t.Fatal(err)
	}
	lengths := map[float64]float64{}
	for _, p := range []float64{0.1, 0.5, 1} {
		total := 0
		distinct := map[string]bool{}
		for seed := uint64(0); seed < 50; seed++ {
			enc, err := tok.EncodeDropout(text, false, p, seed)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := tok.EncodeDropout(text, false, p, seed)
			if !slices.Equal(enc.IDs, again.IDs) {
				t.Fatalf("p=%g seed=%d: two encodings with the same seed differ", p, seed)
			}
			dec, _ := tok.Decode(enc.IDs, false)
			if dec != text {
				t.Fatalf("p=%g seed=%d: decodes to %q", p, seed, dec)
			}
			total += enc.Len()
			distinct[intsKey(enc.IDs)] = true
		}
		lengths[p] = float64(total) / 50
		if p < 1 && len(distinct) < 10 {
			t.Errorf("p=%g: only %d distinct segmentations in 50 seeds", p, len(distinct))
		}
	}
	// More dropout, more (shorter) tokens; p=1 drops every merge, leaving
	// one token per byte.
	if !(float64(base.Len()) < lengths[0.1] && lengths[0.1] < lengths[0.5] && lengths[0.5] < lengths[1]) {
		t.Errorf("mean lengths not increasing with p: base %d, %v", base.Len(), lengths)
	}
	if lengths[1] != float64(len(text)) {
		t.Errorf("p=1: mean length %g, want one token per byte (%d)", lengths[1], len(text))
	}
	if _, err := tok.EncodeDropout(text, false, 1.5, 0); err == nil {
		t.Error("p=1.5 accepted")
	}
	if _, err := testTokenizer(t, "bert-base-uncased").EncodeDropout(text, false, 0.1, 0); err == nil {
		t.Error("BPE-dropout accepted on a WordPiece model")
	}
}

func TestBatchDropoutIsDeterministic(t *testing.T) {
	tok := testTokenizer(t, "gpt2")
	texts := make([]string, 100)
	for i := range texts {
		texts[i] = "Subword regularization with BPE-dropout, example number " + string(rune('A'+i%26))
	}
	a, err := tok.EncodeBatchDropout(texts, false, 0.3, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tok.EncodeBatchDropout(texts, false, 0.3, 7)
	c, _ := tok.EncodeBatchDropout(texts, false, 0.3, 8)
	differ := 0
	for i := range texts {
		if !slices.Equal(a[i].IDs, b[i].IDs) {
			t.Fatalf("text %d: same seed, different tokens", i)
		}
		if !slices.Equal(a[i].IDs, c[i].IDs) {
			differ++
		}
		one, _ := tok.EncodeDropout(texts[i], false, 0.3, 7^(uint64(i)+1)*0x9E3779B97F4A7C15)
		if !slices.Equal(one.IDs, a[i].IDs) {
			t.Fatalf("text %d: batch and single encoding disagree", i)
		}
	}
	if differ < 50 {
		t.Errorf("another seed changed only %d of 100 encodings", differ)
	}
}

func intsKey(xs []int) string {
	b := make([]byte, 0, 4*len(xs))
	for _, x := range xs {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return string(b)
}
