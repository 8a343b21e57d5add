package safetensors

import "fmt"

// DType is the element type of a tensor, as the header's "dtype" field names
// it ("F32", "BF16", ...).
//
// The constants are declared in the order of the Rust crate's Dtype enum
// (huggingface/safetensors, safetensors/src/tensor.rs), which the crate
// documents as "increasing alignment order". Writers sort tensors by this
// order, descending, then by name, so the order is part of the file format
// as Python writes it; see [Write].
type DType uint8

// The dtypes of the format. Only some can be converted by the typed getters
// (see [File.Float32] and friends); every one can be read as raw bytes and
// written.
const (
	// InvalidDType is the zero DType; it never appears in a valid file.
	InvalidDType DType = iota
	// BOOL is a boolean stored as one byte (0 or 1).
	BOOL
	// F4 is the 4-bit float E2M1 (two elements per byte).
	F4
	// F6_E2M3 is a 6-bit float with 2 exponent and 3 mantissa bits.
	F6_E2M3
	// F6_E3M2 is a 6-bit float with 3 exponent and 2 mantissa bits.
	F6_E3M2
	// U8 is an unsigned 8-bit integer.
	U8
	// I8 is a signed 8-bit integer.
	I8
	// F8_E5M2 is the 8-bit float E5M2.
	F8_E5M2
	// F8_E4M3 is the 8-bit float E4M3 (torch.float8_e4m3fn).
	F8_E4M3
	// F8_E8M0 is the 8-bit exponent-only scale E8M0 (torch.float8_e8m0fnu).
	F8_E8M0
	// F8_E4M3FNUZ is the 8-bit float E4M3 without negative zero or infinities.
	F8_E4M3FNUZ
	// F8_E5M2FNUZ is the 8-bit float E5M2 without negative zero or infinities.
	F8_E5M2FNUZ
	// I16 is a signed 16-bit integer.
	I16
	// U16 is an unsigned 16-bit integer.
	U16
	// F16 is IEEE 754 half precision.
	F16
	// BF16 is bfloat16: the top 16 bits of a float32.
	BF16
	// I32 is a signed 32-bit integer.
	I32
	// U32 is an unsigned 32-bit integer.
	U32
	// F32 is IEEE 754 single precision.
	F32
	// C64 is a complex number of two float32 (real, imaginary).
	C64
	// F64 is IEEE 754 double precision.
	F64
	// I64 is a signed 64-bit integer.
	I64
	// U64 is an unsigned 64-bit integer.
	U64

	numDTypes // not a dtype: one past the last
)

// dtypeNames and dtypeBits are indexed by DType.
var (
	dtypeNames = [numDTypes]string{
		"", "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3",
		"F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16",
		"I32", "U32", "F32", "C64", "F64", "I64", "U64",
	}
	dtypeBits = [numDTypes]int{
		0, 8, 4, 6, 6, 8, 8, 8, 8,
		8, 8, 8, 16, 16, 16, 16,
		32, 32, 32, 64, 64, 64, 64,
	}
)

// DTypes lists every valid dtype in the order of the Rust enum.
func DTypes() []DType {
	out := make([]DType, 0, numDTypes-1)
	for d := BOOL; d < numDTypes; d++ {
		out = append(out, d)
	}
	return out
}

// ParseDType returns the dtype a header names, e.g. "BF16". Names are
// case-sensitive, as in the Rust crate.
func ParseDType(s string) (DType, error) {
	for d := BOOL; d < numDTypes; d++ {
		if dtypeNames[d] == s {
			return d, nil
		}
	}
	return InvalidDType, fmt.Errorf("unknown dtype %q", s)
}

// Valid reports whether d is one of the format's dtypes.
func (d DType) Valid() bool { return d > InvalidDType && d < numDTypes }

// String returns the header name of d ("F32"), or "DType(n)" if d is not
// valid.
func (d DType) String() string {
	if d.Valid() {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Bits returns the size of one element in bits (4 for F4, 6 for the F6
// types), or 0 if d is not valid.
func (d DType) Bits() int {
	if d.Valid() {
		return dtypeBits[d]
	}
	return 0
}

// Size returns the size of one element in bytes, or 0 for the sub-byte
// dtypes (F4, F6_*) and invalid dtypes.
func (d DType) Size() int {
	if b := d.Bits(); b%8 == 0 {
		return b / 8
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler with the header name.
func (d DType) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("safetensors: invalid dtype %d", uint8(d))
	}
	return []byte(dtypeNames[d]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; see [ParseDType].
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	*d = v
	return nil
}

// byteSize returns the number of bytes of a tensor of dtype d and the given
// shape, checking for negative dimensions, overflow and sub-byte dtypes whose
// element count does not end on a byte boundary. The returned error does not
// name the tensor; callers add that context.
func byteSize(d DType, shape []int) (int64, error) {
	if !d.Valid() {
		return 0, fmt.Errorf("invalid dtype %v", d)
	}
	n := int64(1)
	for i, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is %d, want >= 0", shape, i, s)
		}
		if s != 0 && n > maxElements/int64(s) {
			return 0, fmt.Errorf("shape %v: element count overflows", shape)
		}
		n *= int64(s)
	}
	bits := int64(d.Bits())
	if n > maxElements/bits {
		return 0, fmt.Errorf("shape %v: byte size of %v overflows", shape, d)
	}
	nbits := n * bits
	if nbits%8 != 0 {
		return 0, fmt.Errorf("shape %v: %d elements of %d-bit %v do not end on a byte boundary", shape, n, bits, d)
	}
	return nbits / 8, nil
}

// maxElements bounds element and bit counts so that products stay in int64.
const maxElements = int64(1) << 62

// numElements returns the product of shape (1 for a scalar). The shape must
// already have passed byteSize.
func numElements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}
