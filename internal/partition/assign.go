package partition

import (
	"hash/fnv"
	"slices"
)

// Owner is the live process that should consume unit: the highest
// rendezvous score of (process, unit), ties by id. Every process computes
// the same owner from the same list; when a process leaves, only its units
// move, each to the process that scored second.
func Owner(unit string, live []string) string {
	best, bestScore := "", uint64(0)
	for _, p := range live {
		s := score(p, unit)
		if best == "" || s > bestScore || s == bestScore && p < best {
			best, bestScore = p, s
		}
	}
	return best
}

// Owned lists the units self should consume among live processes. A
// process missing from live (its first beat not seen yet) owns nothing.
func Owned(units, live []string, self string) []string {
	if !slices.Contains(live, self) {
		return nil
	}
	var out []string
	for _, u := range units {
		if Owner(u, live) == self {
			out = append(out, u)
		}
	}
	return out
}

func score(process, unit string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(process))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(unit))
	// FNV's low bits mix poorly for near-identical inputs: finish with a
	// 64-bit mixer (splitmix64) so that scores spread evenly.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
