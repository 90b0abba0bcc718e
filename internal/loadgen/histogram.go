package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets: values below 256ns are
// exact, larger ones fall into 128 buckets per power of two, so a reported
// quantile is within 0.4% (half a bucket) of the true value. Recording never
// allocates. The zero value is not usable: call NewHistogram.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

const (
	subBits    = 7            // 128 buckets per power of two
	subCount   = 1 << subBits // 128
	exactBelow = 2 * subCount // 256ns: one bucket per nanosecond
	maxShift   = 34           // 256 << 34 ns ≈ 73 minutes; longer is clamped
	numBuckets = exactBelow + maxShift*subCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets)}
}

func bucketOf(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // ≥ 1
	if shift > maxShift {
		return numBuckets - 1
	}
	m := v >> uint(shift) // in [128, 256)
	return exactBelow + (shift-1)*subCount + int(m-subCount)
}

// bucketMid is the value a bucket stands for: its midpoint.
func bucketMid(i int) time.Duration {
	if i < exactBelow {
		return time.Duration(i)
	}
	shift := (i-exactBelow)/subCount + 1
	m := uint64((i-exactBelow)%subCount + subCount)
	lo := m << uint(shift)
	return time.Duration(lo + (uint64(1)<<uint(shift))/2)
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every observation of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest observation (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest observation (exact).
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the arithmetic mean (exact).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method:
// the smallest recorded value with at least q·n observations at or below
// it. Results are monotonic in q and lie within [Min, Max].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketMid(i)
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}
