package metrics

// ZlibLen returns len(zlib.compress(text.encode("utf-8"))) as CPython
// computes it: the size in bytes of the zlib stream (RFC 1950) that
// zlib's deflate writes at its default level 6 (windowBits 15, memLevel
// 8, default strategy): a 2-byte header, the deflate blocks (RFC 1951)
// and a 4-byte Adler-32 checksum.
//
// Go's compress/zlib makes different (valid) choices and its output is
// typically several bytes longer on a sentence, which would change the
// zlib attack's scores ([ZlibScore]). So this function replays zlib's own
// algorithm (deflate.c, deflate_slow; trees.c) without emitting bits: the
// same 3-byte hash chains, lazy matching with max_lazy 16, good_length 8,
// nice_length 128 and max_chain 128, the TOO_FAR rule, the window slide,
// a block every 16383 symbols, Huffman code lengths built with zlib's
// heap and tie-breaking and length limiting, and the choice per block
// between stored, fixed and dynamic codes. It is checked against zlib
// 1.2.13 (the deflate output of zlib 1.2.x and 1.3.x is the same at this
// level; zlib-ng, used by some CPython builds, compresses differently).
func ZlibLen(text string) int {
	bits := deflateBits([]byte(text))
	return 2 + int((bits+7)/8) + 4
}

// zlib's deflate constants for level 6 (configuration_table[6]) and its
// default windowBits and memLevel.
const (
	zWSize       = 1 << 15
	zWMask       = zWSize - 1
	zWindowSize  = 2 * zWSize
	zHashBits    = 15
	zHashMask    = 1<<zHashBits - 1
	zHashShift   = (zHashBits + zMinMatch - 1) / zMinMatch
	zMinMatch    = 3
	zMaxMatch    = 258
	zMinLook     = zMaxMatch + zMinMatch + 1
	zMaxDist     = zWSize - zMinLook
	zTooFar      = 4096
	zGoodLength  = 8
	zMaxLazy     = 16
	zNiceLength  = 128
	zMaxChain    = 128
	zLitBufsize  = 1 << (8 + 6)
	zLiterals    = 256
	zLCodes      = zLiterals + 1 + 29
	zDCodes      = 30
	zBLCodes     = 19
	zEndBlock    = 256
	zMaxBits     = 15
	zMaxBLBits   = 7
	zHeapSize    = 2*zLCodes + 1
	zRep3to6     = 16
	zRepZ3to10   = 17
	zRepZ11to138 = 18
)

var (
	zExtraLBits  = [29]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	zExtraDBits  = [30]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	zExtraBLBits = [19]int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7}
	zBLOrder     = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

	// zLengthCode maps match length − 3 to a length code (0..28) and
	// zDistCode distance − 1 (for distances up to 256, then (d−1)>>7 +
	// 256) to a distance code, as trees.c's tr_static_init builds them.
	zLengthCode [256]uint8
	zDistCode   [512]uint8
	// zStaticLLen and zStaticDLen are the code lengths of the fixed
	// Huffman codes.
	zStaticLLen [zLCodes + 2]int
	zStaticDLen [zDCodes]int
)

func init() {
	length := 0
	code := 0
	for ; code < 28; code++ {
		for range 1 << zExtraLBits[code] {
			zLengthCode[length] = uint8(code)
			length++
		}
	}
	zLengthCode[length-1] = uint8(code)
	dist := 0
	for code = 0; code < 16; code++ {
		for range 1 << zExtraDBits[code] {
			zDistCode[dist] = uint8(code)
			dist++
		}
	}
	dist >>= 7
	for ; code < zDCodes; code++ {
		for range 1 << (zExtraDBits[code] - 7) {
			zDistCode[256+dist] = uint8(code)
			dist++
		}
	}
	for n := range zStaticLLen {
		switch {
		case n <= 143:
			zStaticLLen[n] = 8
		case n <= 255:
			zStaticLLen[n] = 9
		case n <= 279:
			zStaticLLen[n] = 7
		default:
			zStaticLLen[n] = 8
		}
	}
	for n := range zStaticDLen {
		zStaticDLen[n] = 5
	}
}

func zDCode(dist int) int {
	if dist < 256 {
		return int(zDistCode[dist])
	}
	return int(zDistCode[256+(dist>>7)])
}

// zDeflate is the part of zlib's deflate_state that decides the output
// size.
type zDeflate struct {
	in                      []byte
	next                    int // next input byte to read
	window                  [zWindowSize + zMaxMatch]byte
	head                    [1 << zHashBits]uint16
	prev                    [zWSize]uint16
	insH                    int
	strstart, lookahead     int
	blockStart              int
	matchStart, prevMatch   int
	matchLength, prevLength int
	matchAvailable          bool

	lFreq    [zHeapSize]int
	dFreq    [2*zDCodes + 1]int
	nSyms    int
	totalBit int64
}

// deflateBits returns the number of bits of the deflate stream zlib
// writes for in at level 6, before the final padding to a byte.
func deflateBits(in []byte) int64 {
	s := &zDeflate{in: in, matchLength: zMinMatch - 1, prevLength: zMinMatch - 1}
	s.initBlock()
	for {
		if s.lookahead < zMinLook {
			s.fillWindow()
			if s.lookahead == 0 {
				break
			}
		}
		hashHead := 0
		if s.lookahead >= zMinMatch {
			hashHead = s.insertString(s.strstart)
		}
		s.prevLength, s.prevMatch = s.matchLength, s.matchStart
		s.matchLength = zMinMatch - 1
		if hashHead != 0 && s.prevLength < zMaxLazy && s.strstart-hashHead <= zMaxDist {
			s.matchLength = s.longestMatch(hashHead)
			if s.matchLength <= 5 && s.matchLength == zMinMatch && s.strstart-s.matchStart > zTooFar {
				s.matchLength = zMinMatch - 1
			}
		}
		switch {
		case s.prevLength >= zMinMatch && s.matchLength <= s.prevLength:
			maxInsert := s.strstart + s.lookahead - zMinMatch
			flush := s.tallyDist(s.strstart-1-s.prevMatch, s.prevLength-zMinMatch)
			s.lookahead -= s.prevLength - 1
			for s.prevLength -= 2; s.prevLength != 0; s.prevLength-- {
				s.strstart++
				if s.strstart <= maxInsert {
					s.insertString(s.strstart)
				}
			}
			s.matchAvailable = false
			s.matchLength = zMinMatch - 1
			s.strstart++
			if flush {
				s.flushBlock()
			}
		case s.matchAvailable:
			if s.tallyLit(s.window[s.strstart-1]) {
				s.flushBlock()
			}
			s.strstart++
			s.lookahead--
		default:
			s.matchAvailable = true
			s.strstart++
			s.lookahead--
		}
	}
	if s.matchAvailable {
		s.tallyLit(s.window[s.strstart-1])
	}
	s.flushBlock()
	return s.totalBit
}

// insertString adds the string at pos to its hash chain and returns the
// previous head of the chain (0 is zlib's NIL).
func (s *zDeflate) insertString(pos int) int {
	s.insH = ((s.insH << zHashShift) ^ int(s.window[pos+zMinMatch-1])) & zHashMask
	h := int(s.head[s.insH])
	s.prev[pos&zWMask] = uint16(h)
	s.head[s.insH] = uint16(pos)
	return h
}

// fillWindow is zlib's fill_window with all input available: slide the
// window down by 32 KiB when the current position nears its end, then
// read as much input as fits.
func (s *zDeflate) fillWindow() {
	for {
		more := zWindowSize - s.lookahead - s.strstart
		if s.strstart >= zWSize+zMaxDist {
			copy(s.window[:zWSize-more], s.window[zWSize:zWSize+zWSize-more])
			s.matchStart -= zWSize
			s.strstart -= zWSize
			s.blockStart -= zWSize
			for i, v := range s.head {
				s.head[i] = zSlide(v)
			}
			for i, v := range s.prev {
				s.prev[i] = zSlide(v)
			}
			more += zWSize
		}
		if s.next == len(s.in) {
			break
		}
		n := copy(s.window[s.strstart+s.lookahead:s.strstart+s.lookahead+more], s.in[s.next:])
		s.next += n
		s.lookahead += n
		if s.lookahead >= zMinMatch {
			s.insH = int(s.window[s.strstart])
			s.insH = ((s.insH << zHashShift) ^ int(s.window[s.strstart+1])) & zHashMask
		}
		if s.lookahead >= zMinLook || s.next == len(s.in) {
			break
		}
	}
}

func zSlide(v uint16) uint16 {
	if int(v) >= zWSize {
		return v - zWSize
	}
	return 0
}

// longestMatch is zlib's longest_match: walk the hash chain from
// curMatch, at most 128 links (32 if the previous match is already
// good), and return the longest match length found (at least the
// previous match length), setting matchStart when it improves.
func (s *zDeflate) longestMatch(curMatch int) int {
	chain := zMaxChain
	scan := s.strstart
	bestLen := s.prevLength
	nice := zNiceLength
	limit := 0
	if s.strstart > zMaxDist {
		limit = s.strstart - zMaxDist
	}
	if s.prevLength >= zGoodLength {
		chain >>= 2
	}
	nice = min(nice, s.lookahead)
	w := s.window[:]
	for {
		m := curMatch
		if w[m+bestLen] == w[scan+bestLen] && w[m+bestLen-1] == w[scan+bestLen-1] &&
			w[m] == w[scan] && w[m+1] == w[scan+1] {
			// Bytes 0 and 1 match, byte 2 follows from the equal hashes;
			// compare on from byte 3, up to 258.
			l := 3
			for l < zMaxMatch && w[scan+l] == w[m+l] {
				l++
			}
			if l > bestLen {
				s.matchStart = curMatch
				bestLen = l
				if l >= nice {
					break
				}
			}
		}
		curMatch = int(s.prev[curMatch&zWMask])
		chain--
		if curMatch <= limit || chain == 0 {
			break
		}
	}
	return min(bestLen, s.lookahead)
}

func (s *zDeflate) initBlock() {
	clear(s.lFreq[:])
	clear(s.dFreq[:])
	s.lFreq[zEndBlock] = 1
	s.nSyms = 0
}

// tallyLit and tallyDist record a symbol and report whether the symbol
// buffer is full (16383 symbols), which ends the block.
func (s *zDeflate) tallyLit(c byte) bool {
	s.lFreq[c]++
	s.nSyms++
	return s.nSyms == zLitBufsize-1
}

func (s *zDeflate) tallyDist(dist, lc int) bool {
	s.lFreq[int(zLengthCode[lc])+zLiterals+1]++
	s.dFreq[zDCode(dist-1)]++
	s.nSyms++
	return s.nSyms == zLitBufsize-1
}

// flushBlock is _tr_flush_block: it builds the dynamic trees, computes
// the sizes of the three encodings and adds the bits of the smallest
// (ties go to stored, then to fixed codes). Whether the block is the
// last one changes a header bit, not the size; the final padding to a
// byte is left to the caller.
func (s *zDeflate) flushBlock() {
	storedLen := s.strstart - s.blockStart
	var optLen, staticLen int64
	lLen, lMax := zBuildTree(s.lFreq[:zLCodes], zMaxBits, zStaticLLen[:zLCodes], zExtraLBits[:], zLiterals+1, &optLen, &staticLen)
	dLen, dMax := zBuildTree(s.dFreq[:zDCodes], zMaxBits, zStaticDLen[:], zExtraDBits[:], 0, &optLen, &staticLen)
	var blFreq [zBLCodes]int
	zScanTree(lLen, lMax, &blFreq)
	zScanTree(dLen, dMax, &blFreq)
	blLen, _ := zBuildTree(blFreq[:], zMaxBLBits, nil, zExtraBLBits[:], 0, &optLen, &staticLen)
	maxBLIndex := zBLCodes - 1
	for ; maxBLIndex >= 3; maxBLIndex-- {
		if blLen[zBLOrder[maxBLIndex]] != 0 {
			break
		}
	}
	optLen += 3*int64(maxBLIndex+1) + 5 + 5 + 4

	optLenB := (optLen + 3 + 7) >> 3
	staticLenB := (staticLen + 3 + 7) >> 3
	if staticLenB <= optLenB {
		optLenB = staticLenB
	}
	switch {
	case int64(storedLen)+4 <= optLenB && s.blockStart >= 0:
		s.totalBit += 3
		s.totalBit = (s.totalBit + 7) &^ 7 // bi_windup
		s.totalBit += 32 + 8*int64(storedLen)
	case staticLenB == optLenB:
		s.totalBit += 3 + staticLen
	default:
		s.totalBit += 3 + optLen
	}
	s.initBlock()
	s.blockStart = s.strstart
}

// zHeap is trees.c's heap of tree nodes, ordered by frequency and then by
// depth (the "smaller" macro).
type zHeap struct {
	heap          [zHeapSize]int
	heapLen       int
	heapMax       int
	freq          []int
	depth         []int
	dad           []int
	length        []int
	maxCode, elem int
}

func (h *zHeap) smaller(n, m int) bool {
	return h.freq[n] < h.freq[m] || (h.freq[n] == h.freq[m] && h.depth[n] <= h.depth[m])
}

func (h *zHeap) down(k int) {
	v := h.heap[k]
	j := k << 1
	for j <= h.heapLen {
		if j < h.heapLen && h.smaller(h.heap[j+1], h.heap[j]) {
			j++
		}
		if h.smaller(v, h.heap[j]) {
			break
		}
		h.heap[k] = h.heap[j]
		k = j
		j <<= 1
	}
	h.heap[k] = v
}

// zBuildTree is trees.c's build_tree followed by gen_bitlen: it returns
// the code lengths of the elements of freq (limited to maxLength bits)
// and the largest code with a non-zero frequency, and adds to optLen the
// bits of the data under these codes (with extra bits for codes from
// extraBase on) and to staticLen those under the fixed code stree (if
// any). Like zlib it forces at least two codes to exist.
func zBuildTree(freqIn []int, maxLength int, stree []int, extra []int, extraBase int, optLen, staticLen *int64) ([]int, int) {
	elems := len(freqIn)
	nodes := 2*elems + 1
	h := &zHeap{
		freq:   make([]int, nodes),
		depth:  make([]int, nodes),
		dad:    make([]int, nodes),
		length: make([]int, nodes),
		elem:   elems,
	}
	copy(h.freq, freqIn)
	h.heapMax = zHeapSize
	maxCode := -1
	for n := range elems {
		if h.freq[n] != 0 {
			h.heapLen++
			h.heap[h.heapLen] = n
			maxCode = n
		}
	}
	for h.heapLen < 2 {
		node := 0
		if maxCode < 2 {
			maxCode++
			node = maxCode
		}
		h.heapLen++
		h.heap[h.heapLen] = node
		h.freq[node] = 1
		h.depth[node] = 0
		*optLen--
		if stree != nil {
			*staticLen -= int64(stree[node])
		}
	}
	h.maxCode = maxCode
	for n := h.heapLen / 2; n >= 1; n-- {
		h.down(n)
	}
	node := elems
	for {
		n := h.heap[1]
		h.heap[1] = h.heap[h.heapLen]
		h.heapLen--
		h.down(1)
		m := h.heap[1]
		h.heapMax--
		h.heap[h.heapMax] = n
		h.heapMax--
		h.heap[h.heapMax] = m
		h.freq[node] = h.freq[n] + h.freq[m]
		h.depth[node] = max(h.depth[n], h.depth[m]) + 1
		h.dad[n], h.dad[m] = node, node
		h.heap[1] = node
		node++
		h.down(1)
		if h.heapLen < 2 {
			break
		}
	}
	h.heapMax--
	h.heap[h.heapMax] = h.heap[1]

	// gen_bitlen.
	var blCount [zMaxBits + 1]int
	h.length[h.heap[h.heapMax]] = 0
	overflow := 0
	hIdx := h.heapMax + 1
	for ; hIdx < zHeapSize; hIdx++ {
		n := h.heap[hIdx]
		bits := h.length[h.dad[n]] + 1
		if bits > maxLength {
			bits = maxLength
			overflow++
		}
		h.length[n] = bits
		if n > maxCode {
			continue
		}
		blCount[bits]++
		xbits := 0
		if n >= extraBase && n-extraBase < len(extra) {
			xbits = extra[n-extraBase]
		}
		f := int64(h.freq[n])
		*optLen += f * int64(bits+xbits)
		if stree != nil {
			*staticLen += f * int64(stree[n]+xbits)
		}
	}
	if overflow > 0 {
		for overflow > 0 {
			bits := maxLength - 1
			for blCount[bits] == 0 {
				bits--
			}
			blCount[bits]--
			blCount[bits+1] += 2
			blCount[maxLength]--
			overflow -= 2
		}
		hIdx = zHeapSize
		for bits := maxLength; bits != 0; bits-- {
			n := blCount[bits]
			for n != 0 {
				hIdx--
				m := h.heap[hIdx]
				if m > maxCode {
					continue
				}
				if h.length[m] != bits {
					*optLen += int64(bits-h.length[m]) * int64(h.freq[m])
					h.length[m] = bits
				}
				n--
			}
		}
	}
	lens := make([]int, elems+1)
	for n := 0; n <= maxCode; n++ {
		lens[n] = h.length[n]
	}
	return lens[:elems], maxCode
}

// zScanTree is trees.c's scan_tree: it counts, in blFreq, the bit-length
// codes that send_tree will use for the code lengths lens[0..maxCode].
func zScanTree(lens []int, maxCode int, blFreq *[zBLCodes]int) {
	lenAt := func(n int) int {
		if n == maxCode+1 {
			return 0xffff // guard
		}
		return lens[n]
	}
	prevLen := -1
	nextLen := lenAt(0)
	count := 0
	maxCount, minCount := 7, 4
	if nextLen == 0 {
		maxCount, minCount = 138, 3
	}
	for n := 0; n <= maxCode; n++ {
		curLen := nextLen
		nextLen = lenAt(n + 1)
		count++
		if count < maxCount && curLen == nextLen {
			continue
		}
		switch {
		case count < minCount:
			blFreq[curLen] += count
		case curLen != 0:
			if curLen != prevLen {
				blFreq[curLen]++
			}
			blFreq[zRep3to6]++
		case count <= 10:
			blFreq[zRepZ3to10]++
		default:
			blFreq[zRepZ11to138]++
		}
		count = 0
		prevLen = curLen
		switch {
		case nextLen == 0:
			maxCount, minCount = 138, 3
		case curLen == nextLen:
			maxCount, minCount = 6, 3
		default:
			maxCount, minCount = 7, 4
		}
	}
}
