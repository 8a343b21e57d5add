package safetensors

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fixtures in testdata/llama are copies of shared/fixtures/hf/llama
// (written by transformers 5.17 save_pretrained / safetensors.torch.save_file,
// torch 2.11) and testdata/manifest.json lists their tensors.

type manifest struct {
	Models map[string]struct {
		CheckpointKeys map[string][]int `json:"checkpoint_keys"`
		Lora           struct {
			AdapterKeys []string `json:"adapter_keys"`
		} `json:"lora"`
	} `json:"models"`
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOpen(t testing.TB, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFixtureLlamaModelMatchesManifest(t *testing.T) {
	want := loadManifest(t).Models["llama"].CheckpointKeys
	if len(want) != 21 {
		t.Fatalf("manifest lists %d llama tensors, want 21", len(want))
	}
	f := mustOpen(t, "../testdata/hf/llama/model.safetensors")
	names := f.Names()
	wantNames := make([]string, 0, len(want))
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("Names() = %v\nwant %v", names, wantNames)
	}
	var total int64
	for _, n := range names {
		info, ok := f.Info(n)
		if !ok {
			t.Fatalf("Info(%q) missing", n)
		}
		if info.DType != F32 || !slices.Equal(info.Shape, want[n]) {
			t.Errorf("%s: %v %v, want F32 %v", n, info.DType, info.Shape, want[n])
		}
		if info.Size != int64(4*info.NumElements()) {
			t.Errorf("%s: Size %d for %d elements", n, info.Size, info.NumElements())
		}
		total += info.Size
	}
	st, _ := os.Stat("../testdata/hf/llama/model.safetensors")
	if hdr := int64(2136); st.Size() != 8+hdr+total {
		t.Errorf("file is %d bytes, want 8 + %d + %d", st.Size(), hdr, total)
	}
	if md := f.Metadata(); len(md) != 1 || md["format"] != "pt" {
		t.Errorf("Metadata() = %v, want {format: pt}", md)
	}
}

func TestFixtureLlamaValues(t *testing.T) {
	f := mustOpen(t, "../testdata/hf/llama/model.safetensors")
	tests := []struct {
		name  string
		first []uint32 // float32 bits of the first elements
		last  float32
	}{
		{"model.norm.weight", []uint32{0x3f663b0a, 0x3f8a4749, 0x3f5da860}, 1.1487863063812256},
		{"lm_head.weight", []uint32{0x3db3956b, 0x3d83080e, 0xbc821004}, -0.13351964950561523},
		{"model.layers.1.self_attn.k_proj.weight", []uint32{0xbcf550d4, 0x3da628c9, 0x3da78d69}, 0.02692038007080555},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := f.Float32(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			for i, bits := range tt.first {
				if math.Float32bits(v[i]) != bits {
					t.Errorf("[%d] = %v (%#08x), want %#08x", i, v[i], math.Float32bits(v[i]), bits)
				}
			}
			if v[len(v)-1] != tt.last {
				t.Errorf("last = %v, want %v", v[len(v)-1], tt.last)
			}
			// Float64 is exact, and Bytes is the same data.
			v64, err := f.Float64(tt.name)
			if err != nil || float32(v64[0]) != v[0] {
				t.Errorf("Float64[0] = %v, %v; want %v", v64[0], err, v[0])
			}
			raw, _ := f.Bytes(tt.name)
			if len(raw) != 4*len(v) {
				t.Errorf("Bytes has %d bytes for %d floats", len(raw), len(v))
			}
		})
	}
	// An integer getter on float data is an ErrDType naming file and tensor.
	_, err := f.Int64("model.norm.weight")
	wantErr(t, err, ErrDType, "../testdata/hf/llama/model.safetensors", `"model.norm.weight"`, "F32 to int64")
}

func TestFixtureExpected(t *testing.T) {
	f := mustOpen(t, "../testdata/hf/llama/expected.safetensors")
	if md := f.Metadata(); md != nil {
		t.Errorf("Metadata() = %v, want nil (saved without metadata)", md)
	}
	wantShapes := map[string][]int{
		"input_ids": {2, 12}, "logits": {2, 12, 320}, "loss": {1}, "greedy_ids": {1, 15},
		"hidden_states.0": {2, 12, 64}, "batch_prompt_mask": {2, 5},
	}
	for n, s := range wantShapes {
		info, ok := f.Info(n)
		if !ok || !slices.Equal(info.Shape, s) {
			t.Errorf("%s: shape %v (found %v), want %v", n, info.Shape, ok, s)
		}
	}
	ids, err := f.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []int64{109, 277, 235, 177, 125, 58, 215, 213, 168, 120, 246, 11, 305, 172, 283, 204, 172, 99, 252, 126, 37, 158, 40, 142}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("input_ids = %v, want %v", ids, wantIDs)
	}
	ids32, err := f.Int32("greedy_ids")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{203, 132, 317, 73, 255, 316, 314, 49, 282, 248, 239, 41, 56, 77, 209}; !slices.Equal(ids32, want) {
		t.Errorf("greedy_ids = %v, want %v", ids32, want)
	}
	loss, err := f.Float32("loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(loss) != 1 || math.Float32bits(loss[0]) != 0x40c5772d {
		t.Errorf("loss = %v, want 6.170797824859619", loss)
	}
	logits, err := f.Float32("logits")
	if err != nil {
		t.Fatal(err)
	}
	if logits[0] != -1.074401617050171 || logits[320] != 0.43402957916259766 || logits[len(logits)-1] != 0.3297322690486908 {
		t.Errorf("logits[0], [320], [-1] = %v %v %v", logits[0], logits[320], logits[len(logits)-1])
	}
}

func TestFixtureLoraAdapter(t *testing.T) {
	want := loadManifest(t).Models["llama"].Lora.AdapterKeys
	f := mustOpen(t, "../testdata/hf/llama/lora/adapter_model.safetensors")
	// The manifest lists the first 12 keys (sorted); the adapter has 2 layers
	// × 7 projections × (A, B).
	names := f.Names()
	if len(names) != 28 || len(want) != 12 || !slices.Equal(names[:12], want) {
		t.Fatalf("Names() = %v\nwant 28 names starting with %v", names, want)
	}
	for _, n := range names {
		info, _ := f.Info(n)
		var r int
		if strings.Contains(n, "lora_A") {
			r = info.Shape[0]
		} else {
			r = info.Shape[1]
		}
		if info.DType != F32 || len(info.Shape) != 2 || r != 4 {
			t.Errorf("%s: %v %v, want F32 with rank 4", n, info.DType, info.Shape)
		}
	}
	const b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
	info, _ := f.Info(b)
	if !slices.Equal(info.Shape, []int{64, 4}) || info.Offset != 8+3480+15360 {
		t.Errorf("%s: shape %v offset %d", b, info.Shape, info.Offset)
	}
	v, err := f.Float32(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{-0.4955741763114929, 0.22569698095321655, -0.24013185501098633, -0.33367013931274414}; !slices.Equal(v[:4], want) {
		t.Errorf("%s[:4] = %v, want %v", b, v[:4], want)
	}
}

// Rewriting a fixture's tensors and metadata with Write reproduces the file
// Python wrote, byte for byte, whatever order the tensors are passed in.
func TestRewriteFixturesByteIdentical(t *testing.T) {
	for _, path := range []string{
		"../testdata/hf/llama/model.safetensors",
		"../testdata/hf/llama/expected.safetensors",
		"../testdata/hf/llama/lora/adapter_model.safetensors",
		"testdata/torch_casts.safetensors", // hand-written by gen_torch_casts.py
	} {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f := mustOpen(t, path)
			names := f.Names()
			slices.Reverse(names) // the input order must not matter
			var tensors []Tensor
			for _, n := range names {
				info, _ := f.Info(n)
				data, err := f.Bytes(n)
				if err != nil {
					t.Fatal(err)
				}
				tensors = append(tensors, Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: data})
			}
			out := filepath.Join(t.TempDir(), "out.safetensors")
			if err := Write(out, tensors, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				n := min(len(got), len(want))
				i := 0
				for i < n && got[i] == want[i] {
					i++
				}
				t.Fatalf("rewritten file differs at byte %d (len %d vs %d): got %q, want %q",
					i, len(got), len(want), got[i:min(i+60, len(got))], want[i:min(i+60, len(want))])
			}
		})
	}
}

func TestOpenDirSingleFileFixture(t *testing.T) {
	c, err := OpenDir("../testdata/hf/llama")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Names()) != 21 || c.IndexMetadata() != nil {
		t.Errorf("%d names, index metadata %v", len(c.Names()), c.IndexMetadata())
	}
	if p, ok := c.File("model.norm.weight"); !ok || p != filepath.Join("../testdata/hf/llama", SingleFileName) {
		t.Errorf("File = %q, %v", p, ok)
	}
	v, err := c.Float32("model.norm.weight")
	if err != nil || math.Float32bits(v[0]) != 0x3f663b0a {
		t.Errorf("Float32 = %v, %v", v[:1], err)
	}
	if md := c.Metadata(); md["format"] != "pt" {
		t.Errorf("Metadata = %v", md)
	}
	_, err = c.Bytes("nope")
	wantErr(t, err, ErrNotFound, `"nope"`, "../testdata/hf/llama")
}
