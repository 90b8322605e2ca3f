package envelope

import (
	"sync"
	"sync/atomic"
)

// ChunkPool recycles the read chunks of object readers. Frames, and the
// events' Raw, point into the chunks (nothing is copied), so a chunk may be
// used again only once nothing holds its bytes: its owner says so with
// ObjectReader.Release. Without a pool every chunk is left to the garbage
// collector: a replay then allocates (and zeroes) as many bytes as it
// reads, half of its allocations in a profile. The zero value is ready.
type ChunkPool struct {
	// Poison overwrites every chunk as it is released, for tests: bytes
	// still in use when their chunk was released then show as changed at
	// once, instead of only once the chunk is reused.
	Poison bool
	p      sync.Pool
	// reused counts chunks handed out again; dropped, chunks released but
	// left to the garbage collector (the stamp changed).
	reused, dropped atomic.Int64
}

func (c *ChunkPool) get() []byte {
	if p, ok := c.p.Get().(*[]byte); ok {
		c.reused.Add(1)
		return *p
	}
	return make([]byte, chunkSize)
}

func (c *ChunkPool) put(b []byte) {
	b = b[:chunkSize]
	if c.Poison {
		for i := range b {
			b[i] = '#'
		}
	}
	c.p.Put(&b)
}

// Stats reports how many chunks were handed out again, and how many
// released chunks were not because their stamp had changed.
func (c *ChunkPool) Stats() (reused, dropped int64) { return c.reused.Load(), c.dropped.Load() }

// retiredChunk is a chunk the framer has moved past: frames still point
// into it up to object offset end.
type retiredChunk struct {
	buf   []byte
	end   int64
	stamp uint64
}

// Recycle makes the reader take its chunks from pool and hand them back
// on Release. stamp is read when a chunk is taken and again when it is
// released; the chunk goes back to the pool only if the two agree. A sink
// whose writes may read a batch's bytes after a failed delivery returned
// (kafka-go goes on writing a batch whose caller stopped waiting) passes
// its count of failed writes: a chunk that lived through a failure is left
// to the garbage collector. Call Recycle before the first Next.
func (o *ObjectReader) Recycle(pool *ChunkPool, stamp func() uint64) {
	o.fr.pool, o.fr.stamp = pool, stamp
}

// Release says nothing holds the bytes of the values before object offset
// upTo any more (every event and dead letter from them was delivered and
// acknowledged, and nothing kept their Raw): the chunks holding only such
// bytes go back to the pool. With done (the last value was acknowledged)
// the current chunk goes too, and the reader must not be used again. It
// is not safe to call concurrently with Next.
func (o *ObjectReader) Release(upTo int64, done bool) {
	f := o.fr
	if f.pool == nil {
		return
	}
	i := 0
	for ; i < len(f.retired) && f.retired[i].end <= upTo; i++ {
		f.recycle(f.retired[i])
		f.retired[i] = retiredChunk{}
	}
	f.retired = f.retired[i:]
	if done {
		for _, c := range f.retired {
			f.recycle(c)
		}
		f.retired = nil
		if f.buf != nil {
			f.recycle(retiredChunk{buf: f.buf, stamp: f.bufStamp})
			f.buf, f.start, f.end = nil, 0, 0
		}
	}
}

func (f *Framer) recycle(c retiredChunk) {
	switch {
	case cap(c.buf) != chunkSize: // grown for a long value
	case f.stamp() != c.stamp:
		f.pool.dropped.Add(1)
	default:
		f.pool.put(c.buf)
	}
}
