package pipeline

import "math/bits"

// bitset marks grid points (one bit per linear index).
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }

func (b bitset) set(i int) { b[i>>6] |= 1 << (uint(i) & 63) }

// setRange marks [lo, hi).
func (b bitset) setRange(lo, hi int) {
	for lo < hi {
		w, off := lo>>6, uint(lo)&63
		n := min(64-int(off), hi-lo)
		mask := ^uint64(0)
		if n < 64 {
			mask = (1<<uint(n) - 1) << off
		}
		b[w] |= mask
		lo += n
	}
}

// count is the number of marked points.
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// each calls f with every marked index in increasing order.
func (b bitset) each(f func(i int)) {
	for wi, w := range b {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(wi<<6 + t)
			w &= w - 1
		}
	}
}
