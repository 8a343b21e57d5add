package decoding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// GenerationConfigName is the file a Hugging Face checkpoint keeps its
// generation defaults in.
const GenerationConfigName = "generation_config.json"

// The values transformers 5 gives a generation field that neither
// generation_config.json nor the caller set
// (GenerationConfig._get_default_generation_params, applied to every field
// still None by GenerationMixin._prepare_generation_config). Defaults returns
// a GenerationConfig holding them.
const (
	// DefaultMaxLength is max_length: with neither max_new_tokens nor
	// max_length set, transformers generates DefaultMaxLength new tokens
	// (see GenerationConfig.MaxNewTokensFor).
	DefaultMaxLength = 20
	// DefaultTemperature is temperature; 1 builds no temperature processor.
	DefaultTemperature = 1.0
	// DefaultTopK is top_k. It applies whenever do_sample is true and the
	// file does not set top_k, so sampling with a Llama 3 file keeps at most
	// 50 tokens before top-p.
	DefaultTopK = 50
	// DefaultTopP is top_p; 1 builds no top-p processor.
	DefaultTopP = 1.0
	// DefaultTypicalP is typical_p; 1 builds no typical-p processor.
	DefaultTypicalP = 1.0
	// DefaultRepetitionPenalty is repetition_penalty; 1 builds no processor.
	DefaultRepetitionPenalty = 1.0
)

// GenerationConfig is the part of a Hugging Face generation_config.json that
// single-sequence (non-beam) greedy decoding and sampling read, with
// transformers 5's defaults in place of absent or null fields. Its JSON form
// is a generation_config.json that transformers reads back the same way
// (unset fields are omitted; Raw and StopTokenIDs are not written).
//
// Zero values mean "unset" where transformers' None and its default act the
// same: MinP 0, MinNewTokens 0, MinLength 0. MaxNewTokens and MaxLength are 0
// when unset because their defaults interact (see MaxNewTokensFor).
type GenerationConfig struct {
	// DoSample picks sampling (true) or greedy decoding (false, the default).
	DoSample bool `yaml:"do_sample" json:"do_sample"`
	// Temperature divides the logits before the truncation processors
	// (sampling only) [1].
	Temperature float64 `yaml:"temperature" json:"temperature"`
	// TopK keeps the TopK highest logits, and every logit tied with the
	// TopK-th (sampling only); 0 disables it [50].
	TopK int `yaml:"top_k" json:"top_k"`
	// TopP keeps the smallest set of most probable tokens whose probability
	// adds up to at least TopP (sampling only); 1 disables it [1].
	TopP float64 `yaml:"top_p" json:"top_p"`
	// MinP removes tokens less probable than MinP times the most probable
	// one (sampling only); 0 disables it [0, transformers' None].
	MinP float64 `yaml:"min_p,omitempty" json:"min_p,omitempty"`
	// TypicalP is locally typical sampling's mass (sampling only); 1
	// disables it [1].
	TypicalP float64 `yaml:"typical_p" json:"typical_p"`
	// RepetitionPenalty penalises every token already in the prompt or the
	// output, in greedy decoding too; 1 disables it [1].
	RepetitionPenalty float64 `yaml:"repetition_penalty" json:"repetition_penalty"`
	// MaxNewTokens caps the generated tokens; 0 means unset.
	MaxNewTokens int `yaml:"max_new_tokens,omitempty" json:"max_new_tokens,omitempty"`
	// MaxLength caps prompt plus generated tokens; 0 means unset. Ignored
	// when MaxNewTokens is set.
	MaxLength int `yaml:"max_length,omitempty" json:"max_length,omitempty"`
	// MinNewTokens forbids the end-of-sequence tokens until this many
	// tokens were generated; 0 means unset.
	MinNewTokens int `yaml:"min_new_tokens,omitempty" json:"min_new_tokens,omitempty"`
	// MinLength forbids the end-of-sequence tokens while prompt plus
	// generated tokens are fewer than this; 0 means unset. Ignored when
	// MinNewTokens is set, as transformers overwrites min_length with
	// prompt length + min_new_tokens.
	MinLength int `yaml:"min_length,omitempty" json:"min_length,omitempty"`
	// NumBeams is num_beams [1]; lethe decodes one beam, so NewChain
	// rejects more.
	NumBeams int `yaml:"num_beams" json:"num_beams"`
	// EOSTokenIDs are the end-of-sequence ids (eos_token_id, an int or a
	// list); a sequence that emits one of them is finished.
	EOSTokenIDs []int `yaml:"eos_token_id,omitempty" json:"eos_token_id,omitempty"`
	// PadTokenID fills finished sequences; nil when unset, in which case
	// the first EOS id is used (see PadID).
	PadTokenID *int `yaml:"pad_token_id,omitempty" json:"pad_token_id,omitempty"`
	// BOSTokenID is bos_token_id, nil when unset. Decoding does not use it;
	// it is kept for callers that build prompts.
	BOSTokenID *int `yaml:"bos_token_id,omitempty" json:"bos_token_id,omitempty"`
	// StopTokenIDs are extra ids that end a sequence like an EOS id does
	// (minimum-length rules forbid them too). They are lethe's, never read
	// from generation_config.json; set them through Overrides.
	StopTokenIDs []int `yaml:"stop_token_ids,omitempty" json:"-"`
	// Raw holds every key of the file that is not one of the fields above
	// (transformers_version, cache_implementation, no_repeat_ngram_size,
	// ...), undecoded. See Warnings for the ones that would change
	// transformers' output.
	Raw map[string]json.RawMessage `yaml:"-" json:"-"`
}

// Defaults returns the configuration transformers 5 uses when nothing is set:
// greedy decoding, 20 new tokens, no EOS.
func Defaults() GenerationConfig {
	return GenerationConfig{
		Temperature:       DefaultTemperature,
		TopK:              DefaultTopK,
		TopP:              DefaultTopP,
		TypicalP:          DefaultTypicalP,
		RepetitionPenalty: DefaultRepetitionPenalty,
		NumBeams:          1,
	}
}

// LoadGenerationConfig reads a generation_config.json. path is the file, or a
// checkpoint directory holding GenerationConfigName. A missing file is not an
// error: it yields Defaults(), as transformers does for a model without one
// (which is greedy decoding). Keys that GenerationConfig does not mirror are
// kept in Raw; a known key holding the wrong JSON type is an error naming the
// file and the key.
func LoadGenerationConfig(path string) (GenerationConfig, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, GenerationConfigName)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults(), nil
	}
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("decoding: read generation config: %w", err)
	}
	cfg, err := ParseGenerationConfig(data)
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("decoding: %s: %w", path, err)
	}
	return cfg, nil
}

// ParseGenerationConfig decodes the JSON text of a generation_config.json
// onto Defaults(). A null value counts as absent, as in transformers. Errors
// name the offending key.
func ParseGenerationConfig(data []byte) (GenerationConfig, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return GenerationConfig{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return GenerationConfig{}, errors.New("not a JSON object: null")
	}
	cfg := Defaults()
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error reported does not depend on map order
	for _, key := range keys {
		raw := obj[key]
		set, known := fileFields[key]
		if !known {
			if cfg.Raw == nil {
				cfg.Raw = map[string]json.RawMessage{}
			}
			cfg.Raw[key] = raw
			continue
		}
		if isNull(raw) {
			continue
		}
		if err := set(&cfg, raw); err != nil {
			return GenerationConfig{}, fmt.Errorf("field %q: %w", key, err)
		}
	}
	return cfg, nil
}

// fileFields decodes each mirrored key of generation_config.json. The checks
// here are the ones transformers makes when it loads a file
// (GenerationConfig.validate) plus counts that cannot be negative; value
// ranges of the sampling parameters are checked by Validate, because
// transformers only rejects them when it builds the processors.
var fileFields = map[string]func(*GenerationConfig, json.RawMessage) error{
	"do_sample":          func(c *GenerationConfig, r json.RawMessage) error { return decodeBool(r, &c.DoSample) },
	"temperature":        func(c *GenerationConfig, r json.RawMessage) error { return decodeFloat(r, &c.Temperature) },
	"top_k":              func(c *GenerationConfig, r json.RawMessage) error { return decodeInt(r, &c.TopK) },
	"top_p":              func(c *GenerationConfig, r json.RawMessage) error { return decodeFloat(r, &c.TopP) },
	"min_p":              func(c *GenerationConfig, r json.RawMessage) error { return decodeFloat(r, &c.MinP) },
	"typical_p":          func(c *GenerationConfig, r json.RawMessage) error { return decodeFloat(r, &c.TypicalP) },
	"repetition_penalty": func(c *GenerationConfig, r json.RawMessage) error { return decodeFloat(r, &c.RepetitionPenalty) },
	"num_beams":          func(c *GenerationConfig, r json.RawMessage) error { return decodeInt(r, &c.NumBeams) },
	"max_new_tokens": func(c *GenerationConfig, r json.RawMessage) error {
		if err := decodeInt(r, &c.MaxNewTokens); err != nil {
			return err
		}
		if c.MaxNewTokens <= 0 {
			return fmt.Errorf("must be greater than 0, got %d", c.MaxNewTokens)
		}
		return nil
	},
	"max_length":     nonNegative(func(c *GenerationConfig) *int { return &c.MaxLength }),
	"min_new_tokens": nonNegative(func(c *GenerationConfig) *int { return &c.MinNewTokens }),
	"min_length":     nonNegative(func(c *GenerationConfig) *int { return &c.MinLength }),
	"eos_token_id": func(c *GenerationConfig, r json.RawMessage) error {
		ids, err := decodeIntOrList(r)
		c.EOSTokenIDs = ids
		return err
	},
	"pad_token_id": func(c *GenerationConfig, r json.RawMessage) error { return decodeOptInt(r, &c.PadTokenID) },
	"bos_token_id": func(c *GenerationConfig, r json.RawMessage) error { return decodeOptInt(r, &c.BOSTokenID) },
}

func nonNegative(field func(*GenerationConfig) *int) func(*GenerationConfig, json.RawMessage) error {
	return func(c *GenerationConfig, r json.RawMessage) error {
		p := field(c)
		if err := decodeInt(r, p); err != nil {
			return err
		}
		if *p < 0 {
			return fmt.Errorf("must not be negative, got %d", *p)
		}
		return nil
	}
}

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

func decodeBool(r json.RawMessage, dst *bool) error {
	if err := json.Unmarshal(r, dst); err != nil {
		return fmt.Errorf("want true or false, got %s", r)
	}
	return nil
}

// number decodes a JSON number literal; unlike json.Number it refuses a
// string holding digits, which transformers would not treat as a number.
func number(r json.RawMessage) (json.Number, error) {
	var n json.Number
	if t := bytes.TrimSpace(r); len(t) > 0 && t[0] == '"' {
		return "", errors.New("a string")
	}
	err := json.Unmarshal(r, &n)
	return n, err
}

func decodeFloat(r json.RawMessage, dst *float64) error {
	n, err := number(r)
	if err != nil {
		return fmt.Errorf("want a number, got %s", r)
	}
	f, err := n.Float64()
	if err != nil {
		return fmt.Errorf("want a number, got %s", r)
	}
	*dst = f
	return nil
}

func decodeInt(r json.RawMessage, dst *int) error {
	n, err := number(r)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", r)
	}
	i, err := n.Int64()
	if err != nil || i != int64(int(i)) {
		return fmt.Errorf("want an integer, got %s", r)
	}
	*dst = int(i)
	return nil
}

func decodeOptInt(r json.RawMessage, dst **int) error {
	var v int
	if err := decodeInt(r, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

func decodeIntOrList(r json.RawMessage) ([]int, error) {
	var one int
	if err := decodeInt(r, &one); err == nil {
		return []int{one}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(r, &list); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", r)
	}
	ids := make([]int, len(list))
	for i, e := range list {
		if err := decodeInt(e, &ids[i]); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return ids, nil
}

// Validate checks the values transformers would reject when it builds the
// logits processors for this configuration: sampling parameters only when
// DoSample is set (transformers builds no warper for greedy decoding, so a
// greedy file may carry temperature 0), the rest always. Errors name the
// generation_config.json key.
func (c GenerationConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !(c.RepetitionPenalty > 0) || math.IsInf(c.RepetitionPenalty, 0) {
		bad("repetition_penalty must be a finite number > 0, got %v", c.RepetitionPenalty)
	}
	if c.NumBeams > 1 {
		bad("num_beams is %d: beam search is not supported, use 1", c.NumBeams)
	}
	if c.MaxNewTokens < 0 || c.MaxLength < 0 || c.MinNewTokens < 0 || c.MinLength < 0 {
		bad("max_new_tokens, max_length, min_new_tokens and min_length must not be negative, got %d, %d, %d, %d",
			c.MaxNewTokens, c.MaxLength, c.MinNewTokens, c.MinLength)
	}
	for _, id := range c.EOSTokenIDs {
		if id < 0 {
			bad("eos_token_id %d is negative", id)
		}
	}
	for _, id := range c.StopTokenIDs {
		if id < 0 {
			bad("stop_token_ids: %d is negative", id)
		}
	}
	if c.PadTokenID != nil && *c.PadTokenID < 0 {
		bad("pad_token_id %d is negative", *c.PadTokenID)
	}
	if c.DoSample {
		if !(c.Temperature > 0) || math.IsInf(c.Temperature, 0) {
			bad("temperature must be a finite number > 0 when do_sample is true, got %v (for greedy decoding set do_sample false)", c.Temperature)
		}
		if c.TopK < 0 {
			bad("top_k must be >= 0 (0 disables it), got %d", c.TopK)
		}
		if !(c.TopP >= 0 && c.TopP <= 1) {
			bad("top_p must be in [0, 1], got %v", c.TopP)
		}
		if !(c.MinP >= 0 && c.MinP <= 1) {
			bad("min_p must be in [0, 1], got %v", c.MinP)
		}
		if c.TypicalP < 1 && !(c.TypicalP > 0) {
			bad("typical_p must be in (0, 1], got %v", c.TypicalP)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("decoding: invalid generation config: %w", err)
	}
	return nil
}

// PadID returns the id written into a sequence after it finished: pad_token_id
// if set, else the first EOS id (transformers' _prepare_special_tokens), else
// the first stop id. ok is false when none exists, in which case no sequence
// can finish before the others.
func (c GenerationConfig) PadID() (id int, ok bool) {
	switch {
	case c.PadTokenID != nil:
		return *c.PadTokenID, true
	case len(c.EOSTokenIDs) > 0:
		return c.EOSTokenIDs[0], true
	case len(c.StopTokenIDs) > 0:
		return c.StopTokenIDs[0], true
	}
	return -1, false
}

// endIDs returns the EOS and stop ids, deduplicated, in order.
func (c GenerationConfig) endIDs() []int {
	ids := make([]int, 0, len(c.EOSTokenIDs)+len(c.StopTokenIDs))
	for _, id := range slices.Concat(c.EOSTokenIDs, c.StopTokenIDs) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// MaxNewTokensFor returns how many tokens may be generated after a prompt of
// promptLen tokens, resolved as transformers 5 does
// (GenerationMixin._prepare_generated_length):
//
//   - max_new_tokens set: that many;
//   - else max_length set: max_length - promptLen, and an error when the
//     prompt already fills it (transformers raises too);
//   - else DefaultMaxLength (20) new tokens, with the total capped at
//     maxPositions (the model's max_position_embeddings; 0 for no cap).
func (c GenerationConfig) MaxNewTokensFor(promptLen, maxPositions int) (int, error) {
	if promptLen < 0 {
		return 0, fmt.Errorf("decoding: negative prompt length %d", promptLen)
	}
	if c.MaxNewTokens > 0 {
		return c.MaxNewTokens, nil
	}
	total := c.MaxLength
	if total == 0 {
		total = promptLen + DefaultMaxLength
		if maxPositions > 0 {
			total = min(total, maxPositions)
		}
	}
	if promptLen >= total {
		return 0, fmt.Errorf("decoding: the prompt has %d tokens but max_length is %d: set max_new_tokens instead", promptLen, total)
	}
	return total - promptLen, nil
}

// Warnings lists settings that lethe reads but ignores here, or that
// transformers would act on and lethe does not implement, in a stable order.
// It mirrors transformers' own warnings for sampling flags set with
// do_sample false (GenerationConfig.validate) and adds the unimplemented
// logits processors found in Raw.
func (c GenerationConfig) Warnings() []string {
	var w []string
	if !c.DoSample {
		ignored := func(name string, v any) {
			w = append(w, fmt.Sprintf("%s is %v but do_sample is false: it only affects sampling and is ignored", name, v))
		}
		if c.Temperature != DefaultTemperature {
			ignored("temperature", c.Temperature)
		}
		if c.TopP != DefaultTopP {
			ignored("top_p", c.TopP)
		}
		if c.MinP != 0 {
			ignored("min_p", c.MinP)
		}
		if c.TypicalP != DefaultTypicalP {
			ignored("typical_p", c.TypicalP)
		}
		if c.TopK != DefaultTopK {
			ignored("top_k", c.TopK)
		}
	}
	keys := make([]string, 0, len(c.Raw))
	for k := range c.Raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		neutral, known := unimplemented[k]
		if !known || isNull(c.Raw[k]) {
			continue
		}
		if neutral != "" && string(bytes.TrimSpace(c.Raw[k])) == neutral {
			continue
		}
		w = append(w, fmt.Sprintf("%s is %s: transformers would apply it, lethe does not implement it", k, c.Raw[k]))
	}
	return w
}

// unimplemented maps generation_config.json keys that make transformers build
// an extra logits processor or stopping criterion to the JSON value at which
// they do nothing ("" when only null does nothing).
var unimplemented = map[string]string{
	"no_repeat_ngram_size":             "0",
	"encoder_no_repeat_ngram_size":     "0",
	"encoder_repetition_penalty":       "1.0",
	"bad_words_ids":                    "",
	"sequence_bias":                    "",
	"suppress_tokens":                  "",
	"begin_suppress_tokens":            "",
	"forced_bos_token_id":              "",
	"forced_eos_token_id":              "",
	"exponential_decay_length_penalty": "",
	"epsilon_cutoff":                   "0.0",
	"eta_cutoff":                       "0.0",
	"top_h":                            "",
	"guidance_scale":                   "1.0",
	"renormalize_logits":               "false",
	"remove_invalid_values":            "false",
	"stop_strings":                     "",
	"max_time":                         "",
	"watermarking_config":              "",
	"penalty_alpha":                    "",
}

// Overrides are generation settings given on the command line or in a lethe
// YAML file; nil (or an empty list) means "keep the value from
// generation_config.json". Merge applies them.
type Overrides struct {
	// DoSample switches between sampling and greedy decoding.
	DoSample *bool `yaml:"do_sample,omitempty" json:"do_sample,omitempty"`
	// Temperature must be > 0.
	Temperature *float64 `yaml:"temperature,omitempty" json:"temperature,omitempty"`
	// TopK must be >= 0; 0 disables top-k.
	TopK *int `yaml:"top_k,omitempty" json:"top_k,omitempty"`
	// TopP must be in (0, 1]; 1 disables top-p.
	TopP *float64 `yaml:"top_p,omitempty" json:"top_p,omitempty"`
	// MinP must be in [0, 1]; 0 disables min-p.
	MinP *float64 `yaml:"min_p,omitempty" json:"min_p,omitempty"`
	// TypicalP must be in (0, 1]; 1 disables typical-p.
	TypicalP *float64 `yaml:"typical_p,omitempty" json:"typical_p,omitempty"`
	// RepetitionPenalty must be > 0; 1 disables it.
	RepetitionPenalty *float64 `yaml:"repetition_penalty,omitempty" json:"repetition_penalty,omitempty"`
	// MaxNewTokens must be > 0.
	MaxNewTokens *int `yaml:"max_new_tokens,omitempty" json:"max_new_tokens,omitempty"`
	// MinNewTokens must be >= 0.
	MinNewTokens *int `yaml:"min_new_tokens,omitempty" json:"min_new_tokens,omitempty"`
	// EOSTokenIDs replace the file's eos_token_id when not empty.
	EOSTokenIDs []int `yaml:"eos_token_id,omitempty" json:"eos_token_id,omitempty"`
	// StopTokenIDs are added to the configuration's stop ids.
	StopTokenIDs []int `yaml:"stop_token_ids,omitempty" json:"stop_token_ids,omitempty"`
	// PadTokenID replaces the file's pad_token_id.
	PadTokenID *int `yaml:"pad_token_id,omitempty" json:"pad_token_id,omitempty"`
}

// Validate checks every set field; the error lists each bad one by its key.
func (o Overrides) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if o.Temperature != nil && !(*o.Temperature > 0 && finite(*o.Temperature)) {
		bad("temperature must be > 0, got %v (for greedy decoding set do_sample false)", *o.Temperature)
	}
	if o.TopK != nil && *o.TopK < 0 {
		bad("top_k must be >= 0 (0 disables it), got %d", *o.TopK)
	}
	if o.TopP != nil && !(*o.TopP > 0 && *o.TopP <= 1) {
		bad("top_p must be in (0, 1], got %v", *o.TopP)
	}
	if o.MinP != nil && !(*o.MinP >= 0 && *o.MinP <= 1) {
		bad("min_p must be in [0, 1], got %v", *o.MinP)
	}
	if o.TypicalP != nil && !(*o.TypicalP > 0 && *o.TypicalP <= 1) {
		bad("typical_p must be in (0, 1], got %v", *o.TypicalP)
	}
	if o.RepetitionPenalty != nil && !(*o.RepetitionPenalty > 0 && finite(*o.RepetitionPenalty)) {
		bad("repetition_penalty must be > 0, got %v", *o.RepetitionPenalty)
	}
	if o.MaxNewTokens != nil && *o.MaxNewTokens <= 0 {
		bad("max_new_tokens must be > 0, got %d", *o.MaxNewTokens)
	}
	if o.MinNewTokens != nil && *o.MinNewTokens < 0 {
		bad("min_new_tokens must be >= 0, got %d", *o.MinNewTokens)
	}
	for _, id := range o.EOSTokenIDs {
		if id < 0 {
			bad("eos_token_id: %d is negative", id)
		}
	}
	for _, id := range o.StopTokenIDs {
		if id < 0 {
			bad("stop_token_ids: %d is negative", id)
		}
	}
	if o.PadTokenID != nil && *o.PadTokenID < 0 {
		bad("pad_token_id must be >= 0, got %d", *o.PadTokenID)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("decoding: invalid generation overrides: %w", err)
	}
	return nil
}

// Merge returns base with the set fields of o in place of its own, after
// checking o and then the result (GenerationConfig.Validate). base is not
// modified.
func Merge(base GenerationConfig, o Overrides) (GenerationConfig, error) {
	if err := o.Validate(); err != nil {
		return GenerationConfig{}, err
	}
	c := base
	c.EOSTokenIDs = slices.Clone(base.EOSTokenIDs)
	c.StopTokenIDs = slices.Clone(base.StopTokenIDs)
	c.Raw = maps.Clone(base.Raw)
	setIf(&c.DoSample, o.DoSample)
	setIf(&c.Temperature, o.Temperature)
	setIf(&c.TopK, o.TopK)
	setIf(&c.TopP, o.TopP)
	setIf(&c.MinP, o.MinP)
	setIf(&c.TypicalP, o.TypicalP)
	setIf(&c.RepetitionPenalty, o.RepetitionPenalty)
	setIf(&c.MaxNewTokens, o.MaxNewTokens)
	setIf(&c.MinNewTokens, o.MinNewTokens)
	if len(o.EOSTokenIDs) > 0 {
		c.EOSTokenIDs = slices.Clone(o.EOSTokenIDs)
	}
	for _, id := range o.StopTokenIDs {
		if !slices.Contains(c.StopTokenIDs, id) {
			c.StopTokenIDs = append(c.StopTokenIDs, id)
		}
	}
	if o.PadTokenID != nil {
		v := *o.PadTokenID
		c.PadTokenID = &v
	}
	if err := c.Validate(); err != nil {
		return GenerationConfig{}, err
	}
	return c, nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
