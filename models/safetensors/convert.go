package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// littleEndian reports whether this machine stores numbers as the format
// does, so that same-type getters can copy bytes instead of decoding.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// copyRaw copies little-endian src into dst (len(src) == len(dst) ×
// sizeof(T)) when the machine is little-endian, and reports whether it did.
func copyRaw[T int32 | int64 | float32 | float64](dst []T, src []byte) bool {
	if !littleEndian || len(dst) == 0 {
		return false
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(src)), src)
	return true
}

// Float32ToF16 rounds f to IEEE half precision, to nearest with ties to
// even, as torch's .half() does: magnitudes from 65520 up become ±Inf,
// values below half the smallest subnormal (2^-25) become ±0, 2^-25 itself
// ties to 0. NaN becomes sign|0x7E00 (torch's c10::Half conversion and the
// F16C instruction give the same).
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // half-precision biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Half subnormal: value = m × 2^-24 with m = full × 2^(exp-126).
		shift := uint(126 - exp) // >= 14
		if shift > 24 {
			return sign // below 2^-25: rounds to zero
		}
		// A carry out of m gives 0x400, the smallest normal, as it should.
		return sign | uint16(roundShift(man|0x800000, shift))
	}
	// Normal: keep 10 mantissa bits; a carry out of the mantissa bumps the
	// exponent, and out of the exponent gives Inf (0x7c00), as it should.
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// roundShift returns v >> shift rounded to nearest, ties to even.
func roundShift(v uint32, shift uint) uint32 {
	q := v >> shift
	rem := v & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return q
}

// F16ToFloat32 returns the float32 equal to the half-precision bits h
// (exact; NaN payloads are kept).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: man × 2^-24, exact in float32.
	v := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// Float32ToBF16 rounds f to bfloat16, to nearest with ties to even, as
// torch's .bfloat16() does (c10::BFloat16's round_to_nearest_even): values
// that round past the largest finite bfloat16 become ±Inf. Every NaN becomes
// 0x7FC0, as torch's scalar conversion writes it (torch's vectorised CPU
// kernel writes 0xFFFF; both read back as NaN).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BF16ToFloat32 returns the float32 equal to the bfloat16 bits h (exact).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float64ToFloat32 rounds f to float32, to nearest with ties to even, as
// torch's .float() does; magnitudes from 2^128 - 2^103 (half an ulp past the
// largest float32) up become ±Inf, and NaN stays NaN. The Go spec leaves
// out-of-range float conversions to the implementation, so they are handled
// here explicitly.
func Float64ToFloat32(f float64) float32 {
	const overflow = 0x1p128 - 0x1p103
	if f >= overflow {
		return float32(math.Inf(1))
	}
	if f <= -overflow {
		return float32(math.Inf(-1))
	}
	return float32(f)
}

// toFloat32 decodes little-endian data of dtype d.
func toFloat32(d DType, b []byte) ([]float32, error) {
	switch d {
	case F32:
		out := make([]float32, len(b)/4)
		if copyRaw(out, b) {
			return out, nil
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case F16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case F64:
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = Float64ToFloat32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %v to float32 (F32, F16, BF16 and F64 convert)", ErrDType, d)
}

// toFloat64 decodes little-endian data of dtype d.
func toFloat64(d DType, b []byte) ([]float64, error) {
	if d == F64 {
		out := make([]float64, len(b)/8)
		if copyRaw(out, b) {
			return out, nil
		}
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	}
	f32, err := toFloat32(d, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v to float64 (F64, F32, F16 and BF16 convert)", ErrDType, d)
	}
	out := make([]float64, len(f32))
	for i, v := range f32 {
		out[i] = float64(v)
	}
	return out, nil
}

// toInt64 decodes little-endian integer or boolean data of dtype d.
func toInt64(d DType, b []byte) ([]int64, error) {
	switch d {
	case I64:
		out := make([]int64, len(b)/8)
		if copyRaw(out, b) {
			return out, nil
		}
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	case U64:
		out := make([]int64, len(b)/8)
		for i := range out {
			v := binary.LittleEndian.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("U64 element %d is %d, beyond int64", i, v)
			}
			out[i] = int64(v)
		}
		return out, nil
	case U32:
		out := make([]int64, len(b)/4)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case I32, I16, U16, I8, U8, BOOL:
		out32, err := toInt32(d, b) // exact for these dtypes
		if err != nil {
			return nil, err
		}
		out := make([]int64, len(out32))
		for i, v := range out32 {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %v to int64 (integer and BOOL dtypes convert)", ErrDType, d)
}

// toInt32 decodes little-endian integer or boolean data of dtype d,
// failing on the first value outside int32.
func toInt32(d DType, b []byte) ([]int32, error) {
	var out []int32
	switch d {
	case I32:
		out = make([]int32, len(b)/4)
		if copyRaw(out, b) {
			return out, nil
		}
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case U32:
		out = make([]int32, len(b)/4)
		for i := range out {
			v := binary.LittleEndian.Uint32(b[4*i:])
			if v > math.MaxInt32 {
				return nil, fmt.Errorf("U32 element %d is %d, beyond int32", i, v)
			}
			out[i] = int32(v)
		}
	case I64:
		out = make([]int32, len(b)/8)
		for i := range out {
			v := int64(binary.LittleEndian.Uint64(b[8*i:]))
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, fmt.Errorf("I64 element %d is %d, beyond int32", i, v)
			}
			out[i] = int32(v)
		}
	case U64:
		out = make([]int32, len(b)/8)
		for i := range out {
			v := binary.LittleEndian.Uint64(b[8*i:])
			if v > math.MaxInt32 {
				return nil, fmt.Errorf("U64 element %d is %d, beyond int32", i, v)
			}
			out[i] = int32(v)
		}
	case I16:
		out = make([]int32, len(b)/2)
		for i := range out {
			out[i] = int32(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case U16:
		out = make([]int32, len(b)/2)
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case I8:
		out = make([]int32, len(b))
		for i, v := range b {
			out[i] = int32(int8(v))
		}
	case U8, BOOL:
		out = make([]int32, len(b))
		for i, v := range b {
			out[i] = int32(v)
		}
	default:
		return nil, fmt.Errorf("%w: %v to int32 (integer and BOOL dtypes convert)", ErrDType, d)
	}
	return out, nil
}
