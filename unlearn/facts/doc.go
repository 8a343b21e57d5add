// Package facts is lethe's built-in unlearning benchmark: short
// question/answer pairs about countries and chemical elements, generated
// from two public-domain files shipped with the package (Debian's
// miscfiles countries list and dict-elements dictionary; see Corpus).
//
// Each entity gives a few facts: a country its capital and ISO 3166-1
// two- and three-letter codes, an element its chemical symbol, atomic
// number, and its name given its symbol. Every example carries, besides
// the question and short answer, the fact stated as a sentence
// (ParaphrasedAnswer) and the same sentence with other entities' facts
// (PerturbedAnswers), for the TOFU truth ratio.
//
// Entities, not questions, are split: SplitForget (10% by default),
// SplitHoldout (10%, never trained on: the non-members of membership
// inference) and SplitRetain (the rest), each kind split separately so
// every split holds the same share of countries and of elements.
//
// The benchmark shipped in data/facts.parquet is Default(): GenerateFS
// with Corpus() and DefaultOptions(), written by Write. Its prompt and
// completion columns hold the QA format (see Example.Prompt), so that a
// `lethe finetune` configuration with
//
//	data:
//	  train:
//	    files: [unlearn/facts/data/facts.parquet]
//	    split: {column: split, values: [forget, retain]}
//	  tokenize:
//	    loss_on: completion
//
// trains on the forget and retain questions directly. Regenerate the file
// with
//
//	go test ./unlearn/facts -run TestShippedFile -update
package facts
