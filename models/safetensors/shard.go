package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/lethe-ml/lethe/internal/pyjson"
)

// File names of a Hugging Face checkpoint directory, as transformers'
// save_pretrained writes them.
const (
	// SingleFileName is the weights file of an unsharded checkpoint.
	SingleFileName = "model.safetensors"
	// IndexFileName is the index of a sharded checkpoint.
	IndexFileName = "model.safetensors.index.json"
)

// DefaultMaxShardBytes is transformers' (v5) default max_shard_size, "50GB"
// (decimal gigabytes), used by WriteSharded when maxShardBytes <= 0.
const DefaultMaxShardBytes int64 = 50_000_000_000

// ShardFileName returns the name of shard i (1-based) of n, as
// huggingface_hub's split_torch_state_dict_into_shards names it for
// transformers: "model-00001-of-00003.safetensors".
func ShardFileName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

// shardNameRE matches shard files of any count, for cleaning a directory as
// save_pretrained does.
var shardNameRE = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// Checkpoint is a Hugging Face checkpoint directory opened for reading: one
// model.safetensors, or the shards listed in model.safetensors.index.json,
// behind the same read API as [File]. A tensor's methods go to the shard
// that holds it.
type Checkpoint struct {
	dir       string
	index     string           // index path; "" for a single file
	indexMeta map[string]any   // the index's "metadata", numbers as json.Number
	files     []*File          // sorted by path
	byName    map[string]*File // tensor -> shard
	names     []string         // sorted
}

// OpenDir opens the checkpoint in dir. Like transformers' from_pretrained, it
// uses model.safetensors when present and otherwise
// model.safetensors.index.json with its shards (see [OpenIndex]). Every file
// is memory-mapped and validated as [Open] does.
func OpenDir(dir string) (*Checkpoint, error) {
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		c := &Checkpoint{dir: dir, files: []*File{f}, byName: map[string]*File{}, names: f.Names()}
		for _, n := range c.names {
			c.byName[n] = f
		}
		return c, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors %s: %w", single, err)
	}
	index := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(index); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors %s: %w: neither %s nor %s is there (is this a Hugging Face model directory? adapters are in adapter_model.safetensors, open it with Open)",
			dir, fs.ErrNotExist, SingleFileName, IndexFileName)
	}
	return OpenIndex(index)
}

// OpenIndex opens a sharded checkpoint from its index file
// ({"metadata": {...}, "weight_map": {tensor: shard file}}); shard files are
// resolved relative to the index's directory. It opens every shard named in
// the weight map and checks that the index and the shards agree: a shard
// file missing, a weight_map entry whose shard lacks the tensor, a tensor
// held by two shards, or a shard tensor missing from the weight_map is an
// error naming the file and the tensor.
func OpenIndex(indexPath string) (*Checkpoint, error) {
	raw, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", indexPath, err)
	}
	meta, weightMap, err := parseIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", indexPath, err)
	}
	dir := filepath.Dir(indexPath)
	c := &Checkpoint{dir: dir, index: indexPath, indexMeta: meta, byName: map[string]*File{}}
	if err := c.openShards(weightMap); err != nil {
		c.Close()
		return nil, err
	}
	c.names = slices.Sorted(maps.Keys(c.byName))
	return c, nil
}

// openShards opens the shards weightMap names and checks them against it.
func (c *Checkpoint) openShards(weightMap map[string]string) error {
	indexPath, dir := c.index, c.dir
	shardNames := slices.Compact(slices.Sorted(maps.Values(weightMap)))
	byShard := map[string]*File{}
	for _, s := range shardNames {
		if !filepath.IsLocal(s) {
			return fmt.Errorf("safetensors %s: %w: weight_map names shard %q, which is not a file inside %s", indexPath, ErrFormat, s, dir)
		}
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("safetensors %s: shard %s named in the weight_map is missing: %w", indexPath, s, err)
			}
			return err
		}
		c.files = append(c.files, f)
		byShard[s] = f
	}
	// Every tensor of every shard must be listed, and only once.
	for _, s := range shardNames {
		f := byShard[s]
		for _, n := range f.Names() {
			if prev, dup := c.byName[n]; dup {
				return fmt.Errorf("safetensors %s: %w: tensor %q is in two shards, %s and %s", indexPath, ErrFormat, n, prev.Path(), f.Path())
			}
			if weightMap[n] != s {
				if weightMap[n] == "" {
					return fmt.Errorf("safetensors %s: %w: tensor %q is in shard %s but not in the weight_map", indexPath, ErrFormat, n, f.Path())
				}
				return fmt.Errorf("safetensors %s: %w: tensor %q is in shard %s but the weight_map puts it in %s", indexPath, ErrFormat, n, f.Path(), weightMap[n])
			}
			c.byName[n] = f
		}
	}
	for _, n := range slices.Sorted(maps.Keys(weightMap)) {
		if _, ok := c.byName[n]; !ok {
			return fmt.Errorf("safetensors %s: %w: tensor %q: weight_map puts it in %s, which has no such tensor (%w)",
				indexPath, ErrFormat, n, filepath.Join(dir, weightMap[n]), ErrNotFound)
		}
	}
	return nil
}

// parseIndex reads an index file strictly: an object whose "weight_map" is
// an object of strings without duplicate keys; "metadata", if present, an
// object (kept as is). Other keys are ignored.
func parseIndex(raw []byte) (map[string]any, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, jsonErr(err, "index")
	}
	if tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("%w: index is %s, want an object with \"weight_map\"", ErrFormat, describe(tok))
	}
	var meta map[string]any
	var weightMap map[string]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonErr(err, "index")
		}
		switch key := tok.(string); key {
		case "metadata":
			if meta != nil {
				return nil, nil, fmt.Errorf("%w: index: key \"metadata\" appears twice", ErrFormat)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, nil, jsonErr(err, "index: key \"metadata\"")
			}
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return nil, nil, fmt.Errorf("%w: index: key \"metadata\" is not an object", ErrFormat)
			}
			meta = m
			if meta == nil {
				meta = map[string]any{}
			}
		case "weight_map":
			if weightMap != nil {
				return nil, nil, fmt.Errorf("%w: index: key \"weight_map\" appears twice", ErrFormat)
			}
			const where = "index: key \"weight_map\""
			tok, err := dec.Token()
			if err != nil {
				return nil, nil, jsonErr(err, where)
			}
			if tok != json.Delim('{') {
				return nil, nil, fmt.Errorf("%w: %s is %s, want an object {tensor: shard file}", ErrFormat, where, describe(tok))
			}
			weightMap = map[string]string{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return nil, nil, jsonErr(err, where)
				}
				name := tok.(string)
				if tok, err = dec.Token(); err != nil {
					return nil, nil, jsonErr(err, where)
				}
				file, ok := tok.(string)
				if !ok || file == "" {
					return nil, nil, fmt.Errorf("%w: %s: tensor %q maps to %s, want a shard file name", ErrFormat, where, name, describe(tok))
				}
				if _, dup := weightMap[name]; dup {
					return nil, nil, fmt.Errorf("%w: %s: tensor %q appears twice", ErrFormat, where, name)
				}
				weightMap[name] = file
			}
			if _, err := dec.Token(); err != nil {
				return nil, nil, jsonErr(err, where)
			}
		default:
			if err := skipValue(dec); err != nil {
				return nil, nil, jsonErr(err, "index")
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, jsonErr(err, "index")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: index has data after the JSON object", ErrFormat)
	}
	if weightMap == nil {
		return nil, nil, fmt.Errorf("%w: index has no \"weight_map\"", ErrFormat)
	}
	return meta, weightMap, nil
}

// Dir returns the checkpoint's directory.
func (c *Checkpoint) Dir() string { return c.dir }

// Files returns the paths of the checkpoint's safetensors files, sorted.
func (c *Checkpoint) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.Path()
	}
	return out
}

// File returns the path of the file that holds a tensor.
func (c *Checkpoint) File(name string) (path string, ok bool) {
	f, ok := c.byName[name]
	if !ok {
		return "", false
	}
	return f.Path(), true
}

// Names returns the names of all tensors across shards, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Info returns a tensor's description; Offset is within the file that
// [Checkpoint.File] names.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	f, ok := c.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Metadata returns a copy of the "__metadata__" of the first file (in path
// order); transformers writes the same {"format": "pt"} in every shard.
func (c *Checkpoint) Metadata() map[string]string {
	if len(c.files) == 0 {
		return nil
	}
	return c.files[0].Metadata()
}

// IndexMetadata returns a copy of the index's "metadata" object
// (transformers writes total_size and total_parameters), with numbers as
// json.Number; nil for a single-file checkpoint.
func (c *Checkpoint) IndexMetadata() map[string]any { return maps.Clone(c.indexMeta) }

// file returns the shard holding name, or an error naming the checkpoint.
func (c *Checkpoint) file(name string) (*File, error) {
	f, ok := c.byName[name]
	if !ok {
		where := c.dir
		if c.index != "" {
			where = c.index
		}
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", where, name, ErrNotFound)
	}
	return f, nil
}

// Bytes returns a tensor's raw bytes; see [File.Bytes].
func (c *Checkpoint) Bytes(name string) ([]byte, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Bytes(name)
}

// Float32 returns a tensor converted to float32; see [File.Float32].
func (c *Checkpoint) Float32(name string) ([]float32, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float32(name)
}

// Float64 returns a tensor converted to float64; see [File.Float64].
func (c *Checkpoint) Float64(name string) ([]float64, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float64(name)
}

// Int64 returns an integer tensor as int64; see [File.Int64].
func (c *Checkpoint) Int64(name string) ([]int64, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Int64(name)
}

// Int32 returns an integer tensor as int32; see [File.Int32].
func (c *Checkpoint) Int32(name string) ([]int32, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Int32(name)
}

// Bool returns a BOOL tensor; see [File.Bool].
func (c *Checkpoint) Bool(name string) ([]bool, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Bool(name)
}

// Close closes every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// WriteSharded writes tensors as a Hugging Face checkpoint directory the way
// transformers' save_pretrained does (creating dir if needed):
//   - tensors are assigned to shards in the order given (state_dict order),
//     with huggingface_hub's greedy rule: a tensor larger than maxShardBytes
//     gets a shard of its own, appended at once; otherwise the current shard
//     is closed when the tensor would take it past maxShardBytes;
//   - one shard is written as model.safetensors with no index; n > 1 shards
//     as model-0000i-of-0000n.safetensors (see [ShardFileName]) plus
//     model.safetensors.index.json, formatted as Python's
//     json.dumps(index, indent=2, sort_keys=True) + "\n" formats it, with
//     metadata total_size (bytes of all tensors) and total_parameters
//     (elements of all tensors; transformers counts the model's parameters,
//     the same number unless the tensors include buffers);
//   - every shard carries metadata as its "__metadata__" (transformers passes
//     {"format": "pt"}), and is written atomically as [Write] does; an old
//     index is removed before the first shard and the new one written last,
//     so a save that fails midway leaves no index to load a mix of old and
//     new shards from;
//   - shard files of an earlier save (model-NNNNN-of-NNNNN.safetensors) that
//     are not part of this one are removed, as save_pretrained does. Unlike
//     save_pretrained, a stale model.safetensors is removed when writing
//     shards and a stale index when writing a single file, since either
//     would shadow or contradict the new weights.
//
// maxShardBytes <= 0 means [DefaultMaxShardBytes]. An empty tensors list
// writes an empty model.safetensors.
func WriteSharded(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		maxShardBytes = DefaultMaxShardBytes
	}
	entries, err := checkTensors(tensors)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors %s: %w", dir, err)
	}
	shards := splitShards(entries, maxShardBytes)
	if len(shards) <= 1 {
		if err := Write(filepath.Join(dir, SingleFileName), tensors, metadata); err != nil {
			return err
		}
		return cleanStale(dir, map[string]bool{SingleFileName: true}, IndexFileName)
	}
	// Drop the old index first: if a shard write fails below, the directory
	// then holds no index rather than one that mixes old and new shards.
	indexPath := filepath.Join(dir, IndexFileName)
	if err := os.Remove(indexPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("safetensors %s: removing the old index: %w", indexPath, err)
	}
	var totalSize, totalParams int64
	weightMap := map[string]string{}
	keep := map[string]bool{IndexFileName: true}
	for i, shard := range shards {
		name := ShardFileName(i+1, len(shards))
		keep[name] = true
		part := make([]Tensor, len(shard))
		for j, k := range shard {
			part[j] = tensors[k]
			weightMap[tensors[k].Name] = name
			totalSize += entries[k].size
			totalParams += int64(numElements(tensors[k].Shape))
		}
		if err := Write(filepath.Join(dir, name), part, metadata); err != nil {
			return err
		}
	}
	index := encodeIndex(totalParams, totalSize, weightMap)
	if err := writeAtomic(indexPath, func(w io.Writer) error { _, err := w.Write(index); return err }); err != nil {
		return fmt.Errorf("safetensors %s: %w", indexPath, err)
	}
	return cleanStale(dir, keep, SingleFileName)
}

// splitShards groups tensor positions into shards with huggingface_hub's
// split_state_dict_into_shards_factory rule.
func splitShards(entries []headerEntry, max int64) [][]int {
	var shards [][]int
	var cur []int
	var curSize int64
	for i, e := range entries {
		if e.size > max {
			shards = append(shards, []int{i})
			continue
		}
		if curSize+e.size > max {
			shards = append(shards, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, i)
		curSize += e.size
	}
	if len(cur) > 0 {
		shards = append(shards, cur)
	}
	return shards
}

// cleanStale removes shard files of an earlier save that are not in keep,
// and the file named extra (a stale index or single file).
func cleanStale(dir string, keep map[string]bool, extra string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", dir, err)
	}
	for _, e := range ents {
		n := e.Name()
		if keep[n] || !e.Type().IsRegular() || (n != extra && !shardNameRE.MatchString(n)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("safetensors %s: removing stale %s: %w", dir, n, err)
		}
	}
	return nil
}

// encodeIndex formats the index as Python's
// json.dumps(index, indent=2, sort_keys=True) + "\n" does.
func encodeIndex(totalParams, totalSize int64, weightMap map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"metadata\": {\n    \"total_parameters\": ")
	b.WriteString(strconv.FormatInt(totalParams, 10))
	b.WriteString(",\n    \"total_size\": ")
	b.WriteString(strconv.FormatInt(totalSize, 10))
	b.WriteString("\n  },\n  \"weight_map\": {")
	for i, k := range slices.Sorted(maps.Keys(weightMap)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		pyjson.WriteString(&b, k, true)
		b.WriteString(": ")
		pyjson.WriteString(&b, weightMap[k], true)
	}
	if len(weightMap) > 0 {
		b.WriteString("\n  }")
	} else {
		b.WriteString("}")
	}
	b.WriteString("\n}\n")
	return b.Bytes()
}
