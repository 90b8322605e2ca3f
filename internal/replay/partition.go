package replay

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Partition is one part of a replay split over several processes (pods of
// a Kubernetes Indexed Job): the objects whose key PartOf assigns to
// Index out of Count. The zero value, like any Count of 1 or less, is the
// whole replay.
type Partition struct {
	Index, Count int
}

// IndexEnv is the environment variable a Kubernetes Indexed Job sets to
// each pod's completion index; "index/n" takes the part from it.
const IndexEnv = "JOB_COMPLETION_INDEX"

// partitionForm is the expected form of a partition, for error messages.
const partitionForm = "want i/n with 0 <= i < n (e.g. 0/3), or index/n to take i from $" + IndexEnv + " (set by a Kubernetes Indexed Job)"

// ParsePartition reads a partition: "i/n" (0-based, 0 <= i < n) or
// "index/n", whose i is $JOB_COMPLETION_INDEX as getenv returns it. ""
// is the whole replay.
func ParsePartition(spec string, getenv func(string) string) (Partition, error) {
	if spec == "" {
		return Partition{}, nil
	}
	i, n, ok := strings.Cut(spec, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 {
		return Partition{}, fmt.Errorf("%q: %s", spec, partitionForm)
	}
	if i == "index" {
		v := getenv(IndexEnv)
		if v == "" {
			return Partition{}, fmt.Errorf("%q: $%s is not set (it is in the pods of a Kubernetes Indexed Job); %s", spec, IndexEnv, partitionForm)
		}
		p, err := ParsePartition(v+"/"+n, getenv)
		if err != nil {
			return Partition{}, fmt.Errorf("%q with $%s=%q: %s", spec, IndexEnv, v, partitionForm)
		}
		return p, nil
	}
	index, err := strconv.Atoi(i)
	if err != nil || index < 0 || index >= count || strconv.Itoa(index) != i {
		return Partition{}, fmt.Errorf("%q: %s", spec, partitionForm)
	}
	return Partition{Index: index, Count: count}, nil
}

// Split reports whether the partition is a part rather than the whole.
func (p Partition) Split() bool { return p.Count > 1 }

// String is "i/n", or "" for the whole replay.
func (p Partition) String() string {
	if !p.Split() {
		return ""
	}
	return strconv.Itoa(p.Index) + "/" + strconv.Itoa(p.Count)
}

// Has reports whether the object with key belongs to the part.
func (p Partition) Has(key string) bool {
	return !p.Split() || PartOf(key, p.Count) == p.Index
}

// validate checks a partition set directly on a Job (ParsePartition
// makes only valid ones).
func (p Partition) validate() error {
	if p.Count < 0 || p.Index < 0 || p.Index >= max(p.Count, 1) {
		return fmt.Errorf("partition %d/%d: %s", p.Index, p.Count, partitionForm)
	}
	return nil
}

// PartOf is the part, out of n, the object with key belongs to: FNV-1a
// (64 bits) of the key within its bucket or directory, modulo n. It
// depends on nothing but the key and n — not the listing order, not the
// other objects — so every part of a replay, and every rerun of it, makes
// the same assignment, and an object added to the export later does not
// move the others.
//
// The assignment is part of the state of partitioned replays already
// run: changing it would reassign objects between parts mid-replay.
func PartOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}
