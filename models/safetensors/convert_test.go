package safetensors

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

func f32(bits uint32) float32 { return math.Float32frombits(bits) }

func TestFloat32ToF16KnownPatterns(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"1", 1, 0x3c00},
		{"-2.5", -2.5, 0xc100},
		{"0.1", 0.1, 0x2e66},
		{"+0", 0, 0x0000},
		{"-0", f32(0x80000000), 0x8000},
		{"max half", 65504, 0x7bff},
		{"just below the overflow tie", 65519.99, 0x7bff},
		{"overflow tie rounds to Inf", 65520, 0x7c00},
		{"65536", 65536, 0x7c00},
		{"-max float32", -math.MaxFloat32, 0xfc00},
		{"+Inf", float32(math.Inf(1)), 0x7c00},
		{"-Inf", float32(math.Inf(-1)), 0xfc00},
		{"NaN", float32(math.NaN()), 0x7e00},
		{"-NaN", f32(0xffc00000), 0xfe00},
		{"signalling NaN", f32(0x7f800001), 0x7e00},
		{"smallest normal 2^-14", 0x1p-14, 0x0400},
		{"largest subnormal", 1023 * 0x1p-24, 0x03ff},
		{"rounds up into the normals", 1023.5 * 0x1p-24, 0x0400},
		{"smallest subnormal 2^-24", 0x1p-24, 0x0001},
		{"2^-25 ties to even zero", 0x1p-25, 0x0000},
		{"-2^-25 ties to -0", -0x1p-25, 0x8000},
		{"just above 2^-25", f32(0x33000001), 0x0001},
		{"3×2^-25 ties to even 2", 3 * 0x1p-25, 0x0002},
		{"5×2^-25 ties to even 2", 5 * 0x1p-25, 0x0002},
		{"below half the smallest subnormal", 0x1p-26, 0x0000},
		{"float32 subnormal", f32(1), 0x0000},
		{"1+2^-11 ties to even 1", 1 + 0x1p-11, 0x3c00},
		{"1+3×2^-11 ties to even", 1 + 3*0x1p-11, 0x3c02},
		{"1+2^-11+2^-23 rounds up", f32(0x3f801001), 0x3c01},
		{"2047.5 rounds to 2048 (even)", 2047.5, 0x6800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToF16(tt.in); got != tt.want {
				t.Errorf("Float32ToF16(%v = %#08x) = %#04x, want %#04x", tt.in, math.Float32bits(tt.in), got, tt.want)
			}
		})
	}
}

func TestFloat32ToBF16KnownPatterns(t *testing.T) {
	tests := []struct {
		name string
		in   uint32
		want uint16
	}{
		{"1", 0x3f800000, 0x3f80},
		{"-2.5", 0xc0200000, 0xc020},
		{"65504 rounds up", 0x477fe000, 0x4780},
		{"+0", 0, 0},
		{"-0", 0x80000000, 0x8000},
		{"tie to even (down)", 0x3f808000, 0x3f80},
		{"tie to even (up)", 0x3f818000, 0x3f82},
		{"below the tie", 0x3f807fff, 0x3f80},
		{"above the tie", 0x3f808001, 0x3f81},
		{"max float32 rounds to Inf", 0x7f7fffff, 0x7f80},
		{"largest that stays finite", 0x7f7f7fff, 0x7f7f},
		{"+Inf", 0x7f800000, 0x7f80},
		{"-Inf", 0xff800000, 0xff80},
		{"NaN", 0x7fc00000, 0x7fc0},
		{"-NaN drops the sign, as c10::BFloat16 does", 0xffc00000, 0x7fc0},
		{"NaN whose payload would round to Inf", 0x7f800001, 0x7fc0},
		{"subnormal tie to even zero", 0x00008000, 0x0000},
		{"subnormal tie to even up", 0x00018000, 0x0002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToBF16(f32(tt.in)); got != tt.want {
				t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

// Every half-precision value decodes to the value its bits define, and
// encodes back to the same bits.
func TestF16Exhaustive(t *testing.T) {
	for h := 0; h <= 0xffff; h++ {
		got := F16ToFloat32(uint16(h))
		sign, exp, man := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && man != 0:
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: %v, want NaN", h, got)
			}
			if back := Float32ToF16(got); back != uint16(sign<<15)|0x7e00 {
				t.Fatalf("%#04x: NaN re-encodes as %#04x", h, back)
			}
			continue
		case exp == 0x1f:
			want = math.Inf(1)
		case exp == 0:
			want = float64(man) * 0x1p-24
		default:
			want = (1 + float64(man)/1024) * math.Ldexp(1, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		if float64(got) != want || math.Signbit(float64(got)) != (sign == 1) {
			t.Fatalf("F16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
		if back := Float32ToF16(got); back != uint16(h) {
			t.Fatalf("F16 %#04x -> %v -> %#04x", h, got, back)
		}
	}
}

func TestBF16Exhaustive(t *testing.T) {
	for h := 0; h <= 0xffff; h++ {
		got := BF16ToFloat32(uint16(h))
		if math.Float32bits(got) != uint32(h)<<16 {
			t.Fatalf("BF16ToFloat32(%#04x) bits %#08x", h, math.Float32bits(got))
		}
		if math.IsNaN(float64(got)) {
			continue
		}
		if back := Float32ToBF16(got); back != uint16(h) {
			t.Fatalf("BF16 %#04x -> %v -> %#04x", h, got, back)
		}
	}
}

func TestFloat64ToFloat32(t *testing.T) {
	limit := 0x1p128 - 0x1p103
	tests := []struct {
		name string
		in   float64
		want uint32
	}{
		{"1", 1, 0x3f800000},
		{"tie to even down", 1 + 0x1p-24, 0x3f800000},
		{"tie to even up", 1 + 3*0x1p-24, 0x3f800002},
		{"above the tie", 1 + 0x1p-24 + 0x1p-50, 0x3f800001},
		{"max float32", math.MaxFloat32, 0x7f7fffff},
		{"just below the overflow tie", math.Nextafter(limit, 0), 0x7f7fffff},
		{"overflow tie rounds to Inf", limit, 0x7f800000},
		{"1e39", 1e39, 0x7f800000},
		{"-1e39", -1e39, 0xff800000},
		{"-Inf", math.Inf(-1), 0xff800000},
		{"smallest subnormal", 0x1p-149, 0x00000001},
		{"half the smallest subnormal ties to 0", 0x1p-150, 0},
		{"1e-46 underflows", 1e-46, 0},
		{"-0", math.Copysign(0, -1), 0x80000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := math.Float32bits(Float64ToFloat32(tt.in)); got != tt.want {
				t.Errorf("Float64ToFloat32(%v) = %#08x, want %#08x", tt.in, got, tt.want)
			}
		})
	}
	if !math.IsNaN(float64(Float64ToFloat32(math.NaN()))) {
		t.Error("NaN does not stay NaN")
	}
}

// testdata/torch_casts.safetensors holds conversions computed by torch
// (gen_torch_casts.py): ~9,400 float32 inputs (random bit patterns, F16 and
// BF16 ties and their neighbours, F16 subnormals, overflow boundaries) and
// ~3,600 float64 inputs.
func TestConversionsMatchTorch(t *testing.T) {
	f := mustOpen(t, "testdata/torch_casts.safetensors")
	in32, err := f.Float32("f32")
	if err != nil {
		t.Fatal(err)
	}
	in64, err := f.Float64("f64")
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(name string) []uint16 {
		b, err := f.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint16, len(b)/2)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return out
	}
	compare := func(what string, in []float32, torch []uint16, conv func(float32) uint16) {
		t.Helper()
		if len(in) != len(torch) {
			t.Fatalf("%s: %d inputs, %d outputs", what, len(in), len(torch))
		}
		bad := 0
		for i, x := range in {
			if got := conv(x); got != torch[i] {
				if bad++; bad <= 10 {
					t.Errorf("%s[%d]: %v (%#08x) -> %#04x, torch %#04x", what, i, x, math.Float32bits(x), got, torch[i])
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d differ from torch", what, bad, len(in))
		}
	}
	compare("f32->f16", in32, u16("f32_f16"), Float32ToF16)
	compare("f32->bf16", in32, u16("f32_bf16"), Float32ToBF16)

	// float64 -> float32, and float64 -> F16/BF16 through FromFloat64.
	want32, _ := f.Bytes("f64_f32")
	got32, err := FromFloat64("x", []int{len(in64)}, in64, F32)
	if err != nil {
		t.Fatal(err)
	}
	for dtype, name := range map[DType]string{F32: "f64_f32", F16: "f64_f16", BF16: "f64_bf16"} {
		want, _ := f.Bytes(name)
		got, err := FromFloat64("x", []int{len(in64)}, in64, dtype)
		if err != nil {
			t.Fatal(err)
		}
		size := dtype.Size()
		bad := 0
		for i := range in64 {
			if string(got.Data[size*i:size*(i+1)]) != string(want[size*i:size*(i+1)]) {
				if bad++; bad <= 10 {
					t.Errorf("f64->%v[%d]: %v -> %x, torch %x", dtype, i, in64[i], got.Data[size*i:size*(i+1)], want[size*i:size*(i+1)])
				}
			}
		}
		if bad > 0 {
			t.Errorf("f64->%v: %d of %d differ from torch", dtype, bad, len(in64))
		}
	}
	if len(got32.Data) != len(want32) {
		t.Fatalf("f64->f32: %d bytes, torch %d", len(got32.Data), len(want32))
	}
	// Reading F64 as Float32 applies the same rounding.
	viaRead, err := f.Float32("f64")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range viaRead {
		if math.Float32bits(v) != binary.LittleEndian.Uint32(want32[4*i:]) {
			t.Fatalf("Float32(f64)[%d] = %v, torch %#08x", i, v, binary.LittleEndian.Uint32(want32[4*i:]))
		}
	}
}

// The byte-by-byte decoders (used on big-endian machines) agree with the
// copying fast path.
func TestDecodeWithoutFastPath(t *testing.T) {
	f := mustOpen(t, "testdata/torch_casts.safetensors")
	e := mustOpen(t, "../testdata/hf/llama/expected.safetensors")
	fast32, _ := f.Float32("f32")
	fast64, _ := f.Float64("f64")
	fastIDs, _ := e.Int64("input_ids")
	fastIDs32, _ := e.Int32("input_ids")
	b, _ := f.Bytes("f32")
	fastI32, _ := toInt32(I32, b)
	littleEndian = false
	defer func() { littleEndian = true }()
	slow32, _ := f.Float32("f32")
	slow64, _ := f.Float64("f64")
	slowIDs, _ := e.Int64("input_ids")
	slowIDs32, _ := e.Int32("input_ids")
	slowI32, _ := toInt32(I32, b)
	for i := range fast32 {
		if math.Float32bits(fast32[i]) != math.Float32bits(slow32[i]) {
			t.Fatalf("f32[%d]: %v vs %v", i, fast32[i], slow32[i])
		}
	}
	for i := range fast64 {
		if math.Float64bits(fast64[i]) != math.Float64bits(slow64[i]) {
			t.Fatalf("f64[%d]: %v vs %v", i, fast64[i], slow64[i])
		}
	}
	if !slices.Equal(fastIDs, slowIDs) || !slices.Equal(fastIDs32, slowIDs32) || !slices.Equal(fastI32, slowI32) || len(fastI32) != len(fast32) {
		t.Error("integer decoders disagree")
	}
}
