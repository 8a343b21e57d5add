package topk

// FormatVersion is the version of the file format this package writes and
// reads (footer key MetaFormatVersion).
const FormatVersion = 1

// PadLogProb is the log-probability of positions without a cached target
// (padding) and the lower bound of stored log-probabilities: finite, so
// that exp(PadLogProb) = 0 and 0·(PadLogProb − x) = 0 without NaN.
const PadLogProb = -1e30

// Column names of a cache file (see the package documentation).
const (
	// ColInputIDs is the example's tokens, list<int32> of T.
	ColInputIDs = "input_ids"
	// ColLabels is the example's labels, list<int32> of T (informational).
	ColLabels = "labels"
	// ColTopKIDs is the top-k token ids, list<int32> of T·K, row-major [T, K].
	ColTopKIDs = "topk_ids"
	// ColTopKLogProbs is their log-probabilities, list<float32> of T·K.
	ColTopKLogProbs = "topk_logprobs"
)

// Footer key-value metadata of a cache file. Values are decimal numbers or
// plain strings.
const (
	// MetaFormatVersion is FormatVersion, "1".
	MetaFormatVersion = "lethe.topk.format_version"
	// MetaK is k, the number of tokens kept per position.
	MetaK = "lethe.topk.k"
	// MetaVocabSize is the teacher's vocabulary size.
	MetaVocabSize = "lethe.topk.vocab_size"
	// MetaTemperature is the softmax temperature, always "1".
	MetaTemperature = "lethe.topk.temperature"
	// MetaTeacher is the teacher's checkpoint folder ("" for a model not
	// loaded from disk).
	MetaTeacher = "lethe.topk.teacher"
	// MetaTeacherType is the teacher's model_type.
	MetaTeacherType = "lethe.topk.teacher_model_type"
	// MetaExamples is the number of rows (examples).
	MetaExamples = "lethe.topk.examples"
	// MetaTokens is the number of tokens of all rows.
	MetaTokens = "lethe.topk.tokens"
)

// row is one row of a cache file.
type row struct {
	InputIDs     []int32   `parquet:"input_ids,list"`
	Labels       []int32   `parquet:"labels,list"`
	TopKIDs      []int32   `parquet:"topk_ids,list"`
	TopKLogProbs []float32 `parquet:"topk_logprobs,list"`
}
