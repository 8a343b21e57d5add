// Package data reads training data from Parquet files and turns it into
// batches for causal language models.
//
// The pipeline is
//
//	Open(SourceConfig) → *Dataset       which files, which columns, which split
//	NewPreprocessor(Encoder, ChatRenderer, TokenizeConfig)
//	                  → Example → Sample   token ids and labels (loss mask)
//	NewLoader(ds, pre, LoaderConfig).Iterate(Position)
//	                  → *Batch ...         shuffled, bucketed or packed, resumable
//
// Datasets come in three shapes (see Shape): raw text, prompt + completion,
// and conversations as a list of {role, content} messages. Open detects the
// shape from the schema unless told, and checks every file's columns.
//
// Reading streams: a Dataset keeps only the files' metadata, and reading
// holds one page per needed column of one row group, so a file of any size
// can be read. A Loader holds one shuffle window (whole row groups, about
// LoaderConfig.WindowRows rows) at a time; see Loader for how shuffling,
// bucketing, packing and resuming fit together, and Batch for the layout of
// packed rows.
//
// Writing (Writer, WriteFile, WriteExamples) goes through a temporary file
// renamed into place, so readers never see a partial file.
//
// Inspect and Stats are the library side of `lethe data inspect` and
// `lethe data stats`.
package data
