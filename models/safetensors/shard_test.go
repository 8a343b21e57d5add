package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSplitShardsLikeHuggingFaceHub(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int64
		max   int64
		want  [][]int
	}{
		// The example of split_state_dict_into_shards_factory's docstring:
		// [6, 6, 2, 6, 2, 2] with a limit of 10 -> [6], [6+2], [6+2+2].
		{"docstring example", []int64{6, 6, 2, 6, 2, 2}, 10, [][]int{{0}, {1, 2}, {3, 4, 5}}},
		// A tensor over the limit gets its own shard, appended at once,
		// while the current shard stays open.
		{"oversized tensor", []int64{4, 20, 4, 4}, 10, [][]int{{1}, {0, 2}, {3}}},
		{"exactly full", []int64{5, 5, 5}, 10, [][]int{{0, 1}, {2}}},
		{"all fit", []int64{1, 2, 3}, 10, [][]int{{0, 1, 2}}},
		{"empty tensors", []int64{0, 0}, 10, [][]int{{0, 1}}},
		{"nothing", nil, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := make([]headerEntry, len(tt.sizes))
			for i, s := range tt.sizes {
				entries[i] = headerEntry{size: s}
			}
			got := splitShards(entries, tt.max)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("splitShards(%v, %d) = %v, want %v", tt.sizes, tt.max, got, tt.want)
			}
		})
	}
}

// The index is formatted as Python's json.dumps(index, indent=2,
// sort_keys=True) + "\n"; want was printed by Python 3.
func TestIndexMatchesPythonJSONDumps(t *testing.T) {
	got := encodeIndex(12, 40, map[string]string{
		"b.weight":              "model-00002-of-00002.safetensors",
		"a.weight":              "model-00001-of-00002.safetensors",
		"q\"\\\n\x01\x7f é😀<>&": "model-00001-of-00002.safetensors",
	})
	want := "{\n  \"metadata\": {\n    \"total_parameters\": 12,\n    \"total_size\": 40\n  },\n  \"weight_map\": {\n" +
		"    \"a.weight\": \"model-00001-of-00002.safetensors\",\n" +
		"    \"b.weight\": \"model-00002-of-00002.safetensors\",\n" +
		"    \"q\\\"\\\\\\n\\u0001\\u007f \\u00e9\\ud83d\\ude00<>&\": \"model-00001-of-00002.safetensors\"\n  }\n}\n"
	if string(got) != want {
		t.Errorf("index\n got %q\nwant %q", got, want)
	}
}

// shardTensors builds n F32 tensors of 4 elements (16 bytes) each.
func shardTensors(t *testing.T, n int) []Tensor {
	var out []Tensor
	for i := range n {
		x, err := FromFloat32(fmt.Sprintf("layers.%d.weight", i), []int{2, 2}, []float32{float32(i), 1, 2, 3}, F32)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

func TestWriteShardedRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	tensors := shardTensors(t, 5)
	md := map[string]string{"format": "pt"}
	// 16-byte tensors, 40-byte shards: 2 + 2 + 1.
	if err := WriteSharded(dir, tensors, md, 40); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var files []string
	for _, e := range ents {
		files = append(files, e.Name())
	}
	wantFiles := []string{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", IndexFileName}
	if !slices.Equal(files, wantFiles) {
		t.Fatalf("wrote %v, want %v", files, wantFiles)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, IndexFileName))
	var index struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	if index.Metadata["total_size"] != 80 || index.Metadata["total_parameters"] != 20 {
		t.Errorf("index metadata %v", index.Metadata)
	}
	if index.WeightMap["layers.2.weight"] != "model-00002-of-00003.safetensors" || index.WeightMap["layers.4.weight"] != "model-00003-of-00003.safetensors" {
		t.Errorf("weight_map %v", index.WeightMap)
	}

	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wantNames []string
	for _, x := range tensors {
		wantNames = append(wantNames, x.Name)
		got, err := c.Bytes(x.Name)
		if err != nil || !bytes.Equal(got, x.Data) {
			t.Errorf("%s: % x, %v", x.Name, got, err)
		}
		info, ok := c.Info(x.Name)
		if !ok || !slices.Equal(info.Shape, []int{2, 2}) {
			t.Errorf("%s: info %+v", x.Name, info)
		}
	}
	slices.Sort(wantNames)
	if !slices.Equal(c.Names(), wantNames) {
		t.Errorf("Names() = %v", c.Names())
	}
	if v, err := c.Float32("layers.3.weight"); err != nil || v[0] != 3 {
		t.Errorf("Float32 = %v, %v", v, err)
	}
	if p, _ := c.File("layers.4.weight"); p != filepath.Join(dir, "model-00003-of-00003.safetensors") {
		t.Errorf("File = %q", p)
	}
	if len(c.Files()) != 3 || c.Metadata()["format"] != "pt" {
		t.Errorf("Files %v, Metadata %v", c.Files(), c.Metadata())
	}
	if ts := c.IndexMetadata()["total_size"]; ts != json.Number("80") {
		t.Errorf("IndexMetadata total_size = %#v", ts)
	}
	_, err = c.Float32("missing")
	wantErr(t, err, ErrNotFound, IndexFileName, `tensor "missing"`)

	// A shard is byte-identical to writing its tensors alone.
	alone := filepath.Join(t.TempDir(), "alone.safetensors")
	if err := Write(alone, tensors[2:4], md); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(alone)
	b, _ := os.ReadFile(filepath.Join(dir, "model-00002-of-00003.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("shard 2 differs from Write of the same tensors")
	}
}

func TestWriteShardedSingleFileAndStaleCleanup(t *testing.T) {
	dir := t.TempDir()
	tensors := shardTensors(t, 3)
	for _, stale := range []string{"model-00001-of-00009.safetensors", "model-00009-of-00009.safetensors", IndexFileName} {
		if err := os.WriteFile(filepath.Join(dir, stale), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, keep := range []string{"config.json", "adapter_model.safetensors", "model-1-of-2.safetensors"} {
		if err := os.WriteFile(filepath.Join(dir, keep), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Fits in one shard: model.safetensors only, stale shards and index gone.
	if err := WriteSharded(dir, tensors, nil, 0); err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		ents, _ := os.ReadDir(dir)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got, want := list(), []string{"adapter_model.safetensors", "config.json", "model-1-of-2.safetensors", SingleFileName}; !slices.Equal(got, want) {
		t.Errorf("after single-file save: %v, want %v", got, want)
	}
	single, _ := os.ReadFile(filepath.Join(dir, SingleFileName))
	alone := filepath.Join(t.TempDir(), "x.safetensors")
	Write(alone, tensors, nil)
	if a, _ := os.ReadFile(alone); !bytes.Equal(a, single) {
		t.Error("model.safetensors differs from Write of the same tensors")
	}
	// Now sharded: the stale model.safetensors goes (it would shadow the
	// shards), the other files stay.
	if err := WriteSharded(dir, tensors, nil, 16); err != nil {
		t.Fatal(err)
	}
	want := []string{"adapter_model.safetensors", "config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
		"model-00003-of-00003.safetensors", "model-1-of-2.safetensors", IndexFileName}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("after sharded save: %v, want %v", got, want)
	}
	// Sharded again with fewer shards: the old third shard goes.
	if err := WriteSharded(dir, tensors, nil, 32); err != nil {
		t.Fatal(err)
	}
	want = []string{"adapter_model.safetensors", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
		"model-1-of-2.safetensors", IndexFileName}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("after re-sharding: %v, want %v", got, want)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Invalid tensors fail before anything is written.
	bad := append(slices.Clone(tensors), tensors[0])
	wantErr(t, WriteSharded(dir, bad, nil, 16), nil, "safetensors "+dir, `tensor "layers.0.weight": the name appears twice`)
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("a failed save changed the directory: %v", got)
	}
}

// writeShardDir writes shards (file -> tensors) and an index to a new
// directory.
func writeShardDir(t *testing.T, shards map[string][]Tensor, index string) string {
	t.Helper()
	dir := t.TempDir()
	for name, ts := range shards {
		if err := Write(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenDirRejectsInconsistentCheckpoints(t *testing.T) {
	ts := shardTensors(t, 3)
	a, b, c := ts[0], ts[1], ts[2] // layers.0/1/2.weight
	const s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	wm := func(pairs ...string) string {
		m := map[string]string{}
		for i := 0; i < len(pairs); i += 2 {
			m[pairs[i]] = pairs[i+1]
		}
		raw, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 48}, "weight_map": m})
		return string(raw)
	}
	tests := []struct {
		name   string
		shards map[string][]Tensor
		index  string
		target error
		want   []string
	}{
		{"shard file missing", map[string][]Tensor{s1: {a}}, wm(a.Name, s1, b.Name, s2),
			fs.ErrNotExist, []string{"shard " + s2 + " named in the weight_map is missing"}},
		{"tensor in two shards", map[string][]Tensor{s1: {a, b}, s2: {b, c}}, wm(a.Name, s1, b.Name, s1, c.Name, s2),
			ErrFormat, []string{`tensor "layers.1.weight" is in two shards`, s1, s2}},
		{"weight_map names a tensor its shard lacks", map[string][]Tensor{s1: {a}, s2: {b}}, wm(a.Name, s1, b.Name, s2, c.Name, s2),
			ErrNotFound, []string{`tensor "layers.2.weight": weight_map puts it in`, s2, "which has no such tensor"}},
		{"weight_map points at the wrong shard", map[string][]Tensor{s1: {a, c}, s2: {b}}, wm(a.Name, s2, b.Name, s2, c.Name, s1),
			ErrFormat, []string{`tensor "layers.0.weight" is in shard`, s1, "but the weight_map puts it in " + s2}},
		{"shard tensor missing from the weight_map", map[string][]Tensor{s1: {a, c}, s2: {b}}, wm(a.Name, s1, b.Name, s2),
			ErrFormat, []string{`tensor "layers.2.weight" is in shard`, "but not in the weight_map"}},
		{"index not JSON", nil, `{"weight_map": `, ErrFormat, []string{"JSON ends early"}},
		{"index without weight_map", nil, `{"metadata": {}}`, ErrFormat, []string{`no "weight_map"`}},
		{"weight_map value not a string", nil, `{"weight_map": {"x": 3}}`, ErrFormat, []string{`tensor "x" maps to the number 3`}},
		{"weight_map key twice", nil, `{"weight_map": {"x": "a.safetensors", "x": "b.safetensors"}}`, ErrFormat, []string{`tensor "x" appears twice`}},
		{"shard outside the directory", nil, `{"weight_map": {"x": "../evil.safetensors"}}`, ErrFormat, []string{`shard "../evil.safetensors", which is not a file inside`}},
		{"corrupt shard", map[string][]Tensor{s1: {a}}, wm(a.Name, s1, b.Name, "model-bad.safetensors"),
			ErrFormat, []string{"model-bad.safetensors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeShardDir(t, tt.shards, tt.index)
			if tt.name == "corrupt shard" {
				os.WriteFile(filepath.Join(dir, "model-bad.safetensors"), []byte("garbage!garbage!"), 0o644)
			}
			c, err := OpenDir(dir)
			if err == nil {
				c.Close()
			}
			wantErr(t, err, tt.target, tt.want...)
		})
	}
	_, err := OpenDir(t.TempDir())
	wantErr(t, err, fs.ErrNotExist, SingleFileName, IndexFileName)
}
