package data

import (
	"reflect"
	"strings"
	"testing"
)

func TestNewBatchLayout(t *testing.T) {
	a := Sample{IDs: []int32{11, 12, 13}, Labels: []int32{IgnoreIndex, 12, 13}}
	b := Sample{IDs: []int32{21, 22}, Labels: []int32{21, 22}} // first label is masked by NewBatch
	c := Sample{IDs: []int32{31, 32, 33, 34}, Labels: []int32{IgnoreIndex, IgnoreIndex, 33, 34}}
	batch, err := NewBatch([][]Sample{{a, b}, {c}}, 3, 6, 7)
	if err != nil {
		t.Fatal(err)
	}
	const X = IgnoreIndex
	want := &Batch{
		Size: 3, Length: 6,
		InputIDs: []int32{
			11, 12, 13, 21, 22, 7,
			31, 32, 33, 34, 7, 7,
			7, 7, 7, 7, 7, 7},
		Labels: []int32{
			X, 12, 13, X, 22, X,
			X, X, 33, 34, X, X,
			X, X, X, X, X, X},
		AttentionMask: []int32{
			1, 1, 1, 1, 1, 0,
			1, 1, 1, 1, 0, 0,
			0, 0, 0, 0, 0, 0},
		PositionIDs: []int32{
			0, 1, 2, 0, 1, 0,
			0, 1, 2, 3, 0, 0,
			0, 0, 0, 0, 0, 0},
		SegmentIDs: []int32{
			1, 1, 1, 2, 2, 0,
			1, 1, 1, 1, 0, 0,
			0, 0, 0, 0, 0, 0},
		Examples: 3, Tokens: 9, LossTokens: 5,
	}
	if !reflect.DeepEqual(batch, want) {
		t.Errorf("batch = %+v\nwant    %+v", batch, want)
	}
	if got := batch.At(batch.SegmentIDs, 1); !reflect.DeepEqual(got, []int32{1, 1, 1, 1, 0, 0}) {
		t.Errorf("At(SegmentIDs, 1) = %v", got)
	}
	if _, err := NewBatch([][]Sample{{a, c}}, 1, 6, 0); err == nil || !strings.Contains(err.Error(), "row 0 holds more than 6 tokens") {
		t.Errorf("overfull row: error = %v", err)
	}
	if _, err := NewBatch([][]Sample{{a}, {b}}, 1, 6, 0); err == nil || !strings.Contains(err.Error(), "2 rows do not fit a batch of 1") {
		t.Errorf("too many rows: error = %v", err)
	}
}

func TestBucketOf(t *testing.T) {
	lengths := CollateConfig{MaxLength: 64, Buckets: []int{8, 16}}.lengths()
	if !reflect.DeepEqual(lengths, []int{8, 16, 64}) {
		t.Fatalf("lengths = %v, want [8 16 64]", lengths)
	}
	for n, want := range map[int]int{1: 0, 8: 0, 9: 1, 16: 1, 17: 2, 64: 2} {
		if got := bucket(lengths, n); got != want {
			t.Errorf("bucket(%d) = %d, want %d", n, got, want)
		}
	}
	if got := (CollateConfig{MaxLength: 16, Buckets: []int{8, 16}}).lengths(); !reflect.DeepEqual(got, []int{8, 16}) {
		t.Errorf("lengths with max_length as last bucket = %v", got)
	}
}

func TestCollateConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  CollateConfig
		want string
	}{
		{CollateConfig{BatchSize: 0, MaxLength: 8}, "collate.batch_size: must be positive, got 0"},
		{CollateConfig{BatchSize: 1, MaxLength: 1}, "collate.max_length: must be at least 2, got 1"},
		{CollateConfig{BatchSize: 1, MaxLength: 8, PadID: -1}, "collate.pad_id: must be >= 0"},
		{CollateConfig{BatchSize: 1, MaxLength: 8, Packing: true, Buckets: []int{4}}, "buckets do not apply"},
		{CollateConfig{BatchSize: 1, MaxLength: 8, Buckets: []int{4, 4}}, "collate.buckets[1]: must be larger than the previous bucket (4), got 4"},
		{CollateConfig{BatchSize: 1, MaxLength: 8, Buckets: []int{16}}, "collate.buckets[0]: 16 is larger than max_length 8"},
		{CollateConfig{BatchSize: 1, MaxLength: 8, Buckets: []int{0}}, "collate.buckets[0]: must be positive"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if err := (CollateConfig{BatchSize: 2, MaxLength: 8, Buckets: []int{4, 8}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
